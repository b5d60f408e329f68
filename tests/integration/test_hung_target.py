"""The daemon with a Ray dashboard that accepts and never answers: nothing else waits for it."""

from __future__ import annotations

import pytest

from tests.integration.conftest import running, wait_for
from tests.silent_server import SilentServer

pytest.importorskip("ray", reason="the Ray sink needs the ray extra")

RULES = """\
- name: tif-to-ext
  when: {{file.name: {{suffix: ".tif"}}}}
  submit: {{extractor: {extractor}, resource: file}}
- name: tif-to-ray
  when: {{file.name: {{suffix: ".tif"}}}}
  submit: {{extractor: hung.mosaic, resource: file, via: ray, entrypoint: "true"}}
"""


def test_a_hung_ray_dashboard_delays_neither_intake_nor_the_amqp_submissions_after_it(wiring):
    wiring.rules.write_text(RULES.format(extractor=wiring.extractor))
    server = SilentServer()
    # a long claim, so the hung Ray request outlasts the test instead of timing out
    settings = wiring.settings(ray_address=server.url, relay_lease_s=600)
    with running(settings):
        try:
            wiring.publish([1])
            wait_for(server.accepted.is_set, 60, "the Ray submission to reach the dashboard")
            wiring.publish([2, 3])  # events that arrive while the Ray send hangs
            wait_for(lambda: wiring.depth(wiring.extractor) == 3, 30, "three AMQP messages")
            ray_rows = wiring.query("SELECT status, attempts FROM submissions WHERE via = 'ray'")
            # all three Ray rows are still waiting on the first one's hung request
            assert sorted(ray_rows) == [("pending", 0)] * 3
            wait_for(lambda: wiring.statuses().get("sent") == 3, 30, "the AMQP rows marked sent")
            assert wiring.depth(wiring.queue) == 0  # every event consumed and acked
        finally:
            server.close()  # the hung request fails now, so the daemon can stop


def test_two_daemons_with_a_hung_ray_send_every_amqp_submission_exactly_once(wiring):
    wiring.rules.write_text(RULES.format(extractor=wiring.extractor))
    server = SilentServer()
    # a short claim: the hung Ray sends outlast it again and again on both daemons
    settings = wiring.settings(ray_address=server.url, relay_lease_s=2.0)
    events = 40
    try:
        with running(settings), running(settings):
            wiring.publish([0])
            wait_for(server.accepted.is_set, 60, "a Ray submission to reach the dashboard")
            wiring.publish(range(1, events))  # while a Ray send hangs
            wait_for(lambda: wiring.statuses().get("sent") == events, 60, "every AMQP row sent")
            server.close()
    finally:
        server.close()
    taken = wiring.drain(wiring.extractor)  # after both daemons stopped: late sends included
    job_ids = [props.message_id for props, _body in taken]
    assert len(job_ids) == events
    assert len(set(job_ids)) == events  # no job id twice
