"""A message that crashes `switchboard run` is dead-lettered after a few crashes (issue 7)."""

from __future__ import annotations

import time

import pytest

from switchboard.source import ERROR_HEADER
from tests.integration.clowder_events import RULES_YAML, expected_job, file_id
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

CRASHING_RULE = '''\
"""Ends the process, as a segfault or the OOM killer would, for one file."""

import os

from switchboard import rule


@rule(on="dataset.file.added")
def crash_on_poison(event, dataset):
    if event.file is not None and event.file.name == "poison.tif":
        os._exit(1)
'''
GOOD, POISON = [1, 2, 4, 5], 3
MAX_RESTARTS = 8


def test_a_message_that_crashes_the_daemon_is_dead_lettered_after_three_crashes_and_its_batch_goes_through(  # noqa: E501 (the behaviour is the name)
    wiring, spawn
):
    rules = wiring.tmp / "rules"
    rules.mkdir()
    (rules / "route.yaml").write_text(RULES_YAML.format(extractor=wiring.extractor, via="amqp"))
    (rules / "crash.py").write_text(CRASHING_RULE)
    # No host: a Python rule may read dataset.name, and without CLOWDER_URL the daemon would ask
    # the event's own (here unreachable) host for it, which this test is not about.
    wiring.publish(GOOD[:2], host="")
    wiring.publish([POISON], name="poison.tif", host="")
    wiring.publish(GOOD[2:], host="")
    error_queue = f"error.{wiring.queue}"

    def settled() -> bool:
        return wiring.depth(error_queue) == 1 and wiring.statuses().get("sent") == len(GOOD)

    crashes = 0
    for _ in range(MAX_RESTARTS):  # the test is the supervisor: restart whenever it exits
        daemon = spawn(SWITCHBOARD_RULES=str(rules), SWITCHBOARD_MAX_CRASHES="3")
        give_up = time.monotonic() + 60
        while daemon.process.poll() is None and not settled() and time.monotonic() < give_up:
            time.sleep(0.2)
        if daemon.process.poll() is None:
            break
        assert daemon.process.returncode == 1, daemon.output()
        crashes += 1
    wait_for(settled, 30, "the dead letter and the good events' submissions")
    wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "everything acked")
    assert daemon.terminate() == 0, daemon.output()

    assert crashes == 3
    ((props, body),) = wiring.drain(error_queue)
    assert body["id"] == file_id(POISON)
    assert props.headers[ERROR_HEADER] == "crashed the daemon 3 times"
    jobs = {p.message_id for p, _ in wiring.drain(wiring.extractor)}
    assert jobs == {expected_job(n, wiring.extractor) for n in GOOD}
    committed = {m for (m,) in wiring.query("SELECT message_id FROM processed_messages")}
    assert committed == {f"msg-{n:08d}" for n in GOOD}
    assert wiring.query("SELECT count(*) FROM intake_attempts") == [(0,)]
