"""Intake hardening on the real RabbitMQ and PostgreSQL: queues that vanish, huge bodies."""

from __future__ import annotations

import hashlib
import json

import pytest

from switchboard.source import ERROR_HEADER
from tests.integration.clowder_events import file_added
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def raw_messages(wiring, queue: str) -> list[tuple]:
    """(properties, body bytes) of every message in `queue`, taken (bodies not parsed)."""
    taken = []
    with wiring.channel() as channel:
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((props, body))


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


def test_deep_and_overlong_bodies_are_dead_lettered_and_the_events_behind_them_go_through(wiring):
    """Issue 7, items 1 and 2, end to end: each of these once stopped all processing."""
    error_queue = f"error.{wiring.queue}"
    deep = file_added(90)
    del deep["msgid"], deep["jobid"]
    deep_body = json.dumps(deep)[:-1] + ', "deep": ' + "[" * 978 + "]" * 978 + "}"
    wiring.publish_raw(deep_body.encode())
    long_id = file_added(91)
    long_id["msgid"] = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(50))
    wiring.publish_raw(json.dumps(long_id).encode())
    wiring.publish([1, 2])
    with running(wiring.settings()):
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "the good events' submissions")
        wait_for(lambda: wiring.depth(error_queue) == 2, 30, "two dead letters")
    reasons = sorted(props.headers[ERROR_HEADER] for props, _ in raw_messages(wiring, error_queue))
    assert reasons == [
        '"msgid" is 3200 bytes long, over the 512-byte limit for ids',
        "body is nested more than 64 levels deep",
    ]
