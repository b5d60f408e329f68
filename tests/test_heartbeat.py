"""Tests of pyclowder-style heartbeats against the real RabbitMQ."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest

from switchboard.heartbeat import HEARTBEAT_EXCHANGE, Heartbeat, extractor_info
from tests.broker import URI, close_connections_named, side_channel

CLOWDER_V1_REQUIRED = ("name", "version", "description", "author", "contexts", "repository")


class Listener:
    """An exclusive queue bound to a fanout exchange, as Clowder binds one to `extractors`."""

    def __init__(self, exchange: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(URI))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange)

    def heartbeats_from(self, beat_id: str, count: int, timeout_s: float = 5.0) -> list[dict]:
        found: list[dict] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count and time.monotonic() < deadline:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            message = json.loads(body)
            if message.get("id") == beat_id:
                found.append(message)
        return found


@pytest.fixture
def exchange() -> Iterator[str]:
    name = f"test.extractors.{uuid.uuid4().hex}"
    yield name
    with side_channel() as cleanup:
        cleanup.exchange_delete(name)


def make_heartbeat(queue: str, exchange: str = HEARTBEAT_EXCHANGE, uri: str = URI) -> Heartbeat:
    return Heartbeat(uri, queue, 300.0, exchange=exchange, client_name=f"test-hb-{queue}")


@contextmanager
def beating(queue: str, exchange: str = HEARTBEAT_EXCHANGE) -> Iterator[tuple[Listener, Heartbeat]]:
    """A Listener on `exchange`, then a Heartbeat for `queue` beating there; both closed after."""
    listener = Listener(exchange)
    heartbeat = make_heartbeat(queue, exchange)
    try:
        yield listener, heartbeat
    finally:
        heartbeat.close()
        listener.connection.close()


def test_extractor_info_has_everything_clowder_v1_requires():
    info = extractor_info("switchboard.terra")
    for key in CLOWDER_V1_REQUIRED:
        assert key in info
    assert info["name"] == "switchboard.terra"
    assert isinstance(info["repository"], list)
    assert set(info["repository"][0]) == {"repType", "repUrl"}
    assert info["categories"] == ["WORKFLOW"]
    assert info["process"] == {"dataset": ["file.added"]}
    assert isinstance(info["contexts"], list)


@pytest.mark.rabbitmq
def test_beat_publishes_pyclowders_heartbeat_message_to_the_fanout_exchange(exchange):
    with beating("switchboard.test", exchange) as (listener, heartbeat):
        assert heartbeat.beat() is True
        assert heartbeat.beat() is True
        messages = listener.heartbeats_from(heartbeat.id, 2)
    assert len(messages) == 2
    assert messages[0] == messages[1]  # one id per process, the same every beat
    assert messages[0] == {
        "id": heartbeat.id,
        "queue": "switchboard.test",
        "owner": "",
        "extractor_info": extractor_info("switchboard.test"),
    }


@pytest.mark.rabbitmq
def test_beat_declares_the_extractors_exchange_exactly_as_clowder_does():
    # the listener declares the exchange as Clowder v1 and pyclowder do
    with beating(f"switchboard.{uuid.uuid4().hex}") as (listener, heartbeat):
        assert heartbeat.beat() is True
        assert len(listener.heartbeats_from(heartbeat.id, 1)) == 1


@pytest.mark.rabbitmq
def test_beat_survives_the_broker_closing_its_idle_connection(exchange):
    queue = f"switchboard.{uuid.uuid4().hex}"
    with beating(queue, exchange) as (listener, heartbeat):
        assert heartbeat.beat() is True
        assert close_connections_named(f"test-hb-{queue}") == 1
        assert heartbeat.beat() is True
        assert len(listener.heartbeats_from(heartbeat.id, 2)) == 2


@pytest.mark.rabbitmq
def test_failed_beat_is_reported_not_raised(exchange):
    with side_channel() as setup:
        setup.exchange_declare(exchange, exchange_type="direct")  # the wrong type
    heartbeat = make_heartbeat("switchboard.test", exchange)
    try:
        assert heartbeat.beat() is False
    finally:
        heartbeat.close()


def test_unreachable_broker_makes_beat_return_false():
    heartbeat = make_heartbeat("q", uri="amqp://guest:guest@127.0.0.1:1/%2f")
    assert heartbeat.beat() is False
