"""Intake hardening on the real RabbitMQ and PostgreSQL: queues that vanish, huge bodies."""

from __future__ import annotations

import pytest

from switchboard.source import ERROR_HEADER
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def test_a_deleted_error_queue_is_declared_again_and_the_next_malformed_message_lands_in_it(
    wiring,
):
    error_queue = f"error.{wiring.queue}"
    with running(wiring.settings()):
        wiring.publish([1])
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the first submission")
        with wiring.channel() as channel:  # a side channel: the daemon does not know
            channel.queue_delete(error_queue)
        wiring.publish_raw(b"not json at all")
        wiring.publish([2])
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "the good event behind it")
        wait_for(lambda: wiring.depth(error_queue) == 1, 30, "the dead letter")
        wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "everything acked")
    ((props, body),) = wiring.drain(error_queue)
    assert body == b"not json at all"
    assert "not valid JSON" in props.headers[ERROR_HEADER]


def test_oversized_bodies_are_dead_lettered_with_their_size_and_the_events_behind_them_go_through(
    wiring,
):
    error_queue = f"error.{wiring.queue}"
    for n in range(3):
        wiring.publish_raw(b'{"padding": "' + b"x" * (50_000 + n) + b'"}')
    wiring.publish([1, 2])
    with running(wiring.settings(max_event_bytes=10_000)):
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "the good events' submissions")
        wait_for(lambda: wiring.depth(error_queue) == 3, 30, "three dead letters")
        wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "everything acked")
    reasons = sorted(props.headers[ERROR_HEADER] for props, _ in wiring.drain(error_queue))
    assert reasons == [
        f"body is {50_000 + n + 15} bytes, over the 10000-byte limit" for n in range(3)
    ]
