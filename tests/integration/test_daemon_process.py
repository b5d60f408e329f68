"""`switchboard run` as a real process: killed, stopped and cut off mid-stream, it loses nothing."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.integration.clowder_events import expected_job
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

EVENTS = 2000


def sent(wiring) -> int:
    return wiring.statuses().get("sent", 0)


def assert_every_job_delivered_once_per_id(wiring, count: int) -> None:
    """Every expected job id is in the extractor queue; duplicates only ever repeat an id."""
    expected = {expected_job(n, wiring.extractor) for n in range(count)}
    messages = wiring.drain(wiring.extractor)
    ids = [props.message_id for props, _ in messages]
    assert set(ids) == expected
    assert all(body["job_id"] == props.message_id for props, body in messages)
    assert wiring.query("SELECT count(*), count(DISTINCT job_id) FROM submissions") == [
        (count, count)
    ]


def test_kill_9_mid_stream_then_restart_loses_no_event_and_repeats_no_job(wiring, spawn):
    wiring.publish(range(EVENTS))
    first = spawn()
    wait_for(lambda: sent(wiring) >= 300, 60, "some hundreds of submissions")
    first.kill()
    assert first.process.returncode == -9
    assert sent(wiring) < EVENTS, "the daemon finished before it could be killed"
    second = spawn()
    wait_for(lambda: sent(wiring) == EVENTS, 90, f"all {EVENTS} submissions sent")
    wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "the input queue to empty")
    assert second.terminate() == 0
    assert wiring.query("SELECT count(*) FROM processed_messages") == [(EVENTS,)]
    assert_every_job_delivered_once_per_id(wiring, EVENTS)


def test_sigterm_exits_0_without_acking_uncommitted_work(wiring, spawn):
    wiring.publish(range(EVENTS))
    daemon = spawn()
    wait_for(lambda: sent(wiring) >= 200, 60, "the daemon to be busy")
    assert daemon.terminate() == 0, daemon.output()
    assert "switchboard daemon stopped" in daemon.output()
    committed = {m for (m,) in wiring.query("SELECT message_id FROM processed_messages")}
    left = {body["msgid"] for _, body in wiring.drain(wiring.queue)}
    # every event is either committed or still in the queue: nothing acked and lost
    assert committed | left == {f"msg-{n:08d}" for n in range(EVENTS)}
    assert len(committed) < EVENTS


def test_broker_and_database_cut_off_mid_stream_lose_nothing(wiring, spawn, vhost):
    wiring.publish(range(EVENTS))
    daemon = spawn()
    wait_for(lambda: sent(wiring) >= 200, 60, "the daemon to be busy")
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test"], check=True)
    wait_for(lambda: sent(wiring) >= 800, 60, "progress after the broker cut")
    assert wiring.terminate_backends() >= 1
    wait_for(lambda: sent(wiring) == EVENTS, 90, f"all {EVENTS} submissions sent")
    wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "the input queue to empty")
    assert daemon.process.poll() is None, "the daemon died"
    assert daemon.terminate() == 0
    assert "connection lost" in daemon.output()
    assert_every_job_delivered_once_per_id(wiring, EVENTS)


def test_sighup_with_a_rule_file_nested_too_deeply_keeps_consuming_with_the_old_rules(
    wiring, spawn
):
    wiring.publish([0])
    daemon = spawn()
    wait_for(lambda: sent(wiring) == 1, 60, "the first submission")
    good_rules = wiring.rules.read_text()
    wiring.rules.write_text("- name: deep\n  when: " + "[" * 5000 + "\n")
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "rules not reloaded" in daemon.output(), 60, "the reload to be refused")
    wiring.publish([1])
    wait_for(lambda: sent(wiring) == 2, 60, "a submission matched by the old rules")
    assert "nested too deeply" in daemon.output()
    assert daemon.process.poll() is None, daemon.output()
    wiring.rules.write_text(good_rules)
    assert daemon.terminate() == 0
