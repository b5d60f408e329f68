"""The daemon's job poller on the real RabbitMQ and PostgreSQL: Ray jobs submitted through the
Ray sink, and REST jobs submitted to a Clowder v2 stand-in, reach their end in the timeline
without anyone running a command."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from switchboard.jobids import job_id
from switchboard.testing import FakeClowder
from tests.integration.clowder_events import file_added, file_id, properties
from tests.integration.conftest import Wiring, running, wait_for
from tests.integration.test_jobs_wire import cli_json

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

RAY_RULES = """\
- name: ok-on-ray
  on: dataset.file.added
  when:
    file.name: {{suffix: "_left.tif"}}
  submit:
    extractor: {extractor}
    resource: file
    via: ray
    entrypoint: "python -c 'print(42)'"
- name: exit-on-ray
  on: dataset.file.added
  when:
    file.name: {{suffix: "_right.tif"}}
  submit:
    extractor: {extractor}
    resource: file
    via: ray
    entrypoint: "python -c 'import sys; sys.exit(3)'"
"""

REST_RULES = """\
- name: rest-v2
  on: dataset.file.added
  submit:
    extractor: {extractor}
    resource: file
    via: clowder-api
"""


def publish(wiring: Wiring, n: int, name: str) -> None:
    body = file_added(n, name=name)
    wiring.publish_raw(json.dumps(body).encode("utf-8"), **properties(n))


def status_of(wiring: Wiring, job: str) -> str | None:
    rows = wiring.query(f"SELECT status FROM jobs WHERE job_id = '{job}'")
    return rows[0][0] if rows else None


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_ray_jobs_that_succeed_and_fail_are_polled_into_their_timelines(
    wiring: Wiring, ray_address: str, ray_client: Any
) -> None:
    wiring.rules.write_text(RAY_RULES.format(extractor=wiring.extractor))
    base = int(uuid.uuid4().hex[:6], 16)  # the Ray head outlives this test: fresh job ids
    ok = job_id("ok-on-ray", wiring.extractor, "file", file_id(base))
    failing = job_id("exit-on-ray", wiring.extractor, "file", file_id(base + 1))
    # a lease long enough for a busy dashboard (each send gets half of it)
    settings = wiring.settings(ray_address=ray_address, job_poll_interval_s=0.5, relay_lease_s=60.0)

    with running(settings):
        publish(wiring, base, f"plot-{base}_left.tif")
        publish(wiring, base + 1, f"plot-{base}_right.tif")
        wait_for(
            lambda: status_of(wiring, ok) == "succeeded" and status_of(wiring, failing) == "failed",
            240,
            "both Ray jobs to end in the jobs table",
        )

    succeeded = cli_json(wiring, "job", ok)
    failed = cli_json(wiring, "job", failing)
    assert isinstance(succeeded, dict) and isinstance(failed, dict)
    assert succeeded["status"] == "succeeded" and succeeded["ray_submission_id"] == ok
    assert succeeded["latest_message"] == "Job finished successfully."
    entries = [(e["status"], e["source"]) for e in succeeded["timeline"]]
    assert ("submitted", "relay") in entries and entries[-1] == ("succeeded", "ray")
    assert {source for _, source in entries} == {"relay", "ray"}
    assert succeeded["finished_at"] is not None and succeeded["elapsed_s"] >= 0
    assert failed["status"] == "failed"
    assert "exit code 3" in failed["latest_message"]
    assert (
        "[error_type JOB_ENTRYPOINT_COMMAND_ERROR; driver exit code 3]"
        in (failed["latest_message"])
    )
    assert failed["timeline"][-1]["source"] == "ray"


@pytest.mark.timeout(120)
def test_rest_jobs_on_clowder_v2_are_polled_by_clowder_s_job_id(wiring: Wiring) -> None:
    wiring.rules.write_text(REST_RULES.format(extractor=wiring.extractor))
    job = job_id("rest-v2", wiring.extractor, "file", file_id(7))
    with FakeClowder(api_version=2) as clowder:
        settings = wiring.settings(
            clowder_url=clowder.url,
            clowder_key=clowder.api_key,
            clowder_version=2,
            job_poll_interval_s=0.2,
        )
        with running(settings):
            publish(wiring, 7, "plot-7_left.tif")
            [clowder_job] = wait_for(lambda: list(clowder.job_ids), 60, "the REST submission")
            wait_for(
                lambda: any(r.path.endswith("/summary") for r in clowder.requests),
                60,
                "the poller to ask Clowder",
            )
            clowder.set_job(clowder_job, "STARTED", "Started processing.")
            wait_for(lambda: status_of(wiring, job) == "started", 60, "the job to start")
            clowder.set_job(clowder_job, "SUCCEEDED", "Done.")
            wait_for(lambda: status_of(wiring, job) == "succeeded", 60, "the job to succeed")

    shown = cli_json(wiring, "job", job)
    assert isinstance(shown, dict)
    assert (shown["clowder_job_id"], shown["latest_message"]) == (clowder_job, "Done.")
    # Clowder's CREATED told nothing new (the job was already submitted): no row of its own
    assert [(e["status"], e["source"]) for e in shown["timeline"]] == [
        ("submitted", "relay"),
        ("started", "clowder"),
        ("succeeded", "clowder"),
    ]


@pytest.mark.timeout(120)
def test_events_flow_while_the_poller_waits_on_a_ray_that_never_answers(wiring: Wiring) -> None:
    from switchboard.store.migrate import upgrade
    from switchboard.store.sql import SqlStore
    from tests.jobs.test_poller import submitted
    from tests.silent_server import SilentServer

    upgrade(wiring.database_url)
    store = SqlStore(wiring.database_url)
    try:
        submitted(store, "a-ray-job-in-flight")
    finally:
        store.close()
    silent = SilentServer()
    try:
        settings = wiring.settings(ray_address=silent.url, job_poll_interval_s=0.2)
        with running(settings):
            assert silent.accepted.wait(60), "the poller never asked Ray"
            wiring.publish(range(1, 6))
            wait_for(lambda: wiring.depth(wiring.extractor) == 5, 60, "five submissions sent")
            assert status_of(wiring, "a-ray-job-in-flight") == "submitted"
    finally:
        silent.close()
