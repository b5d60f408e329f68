"""Tests of pyclowder-style heartbeats against the real RabbitMQ."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pika
import pytest

from switchboard.heartbeat import HEARTBEAT_EXCHANGE, Heartbeat, extractor_info

URI = "amqp://guest:guest@127.0.0.1:5672/%2f"
CLOWDER_V1_REQUIRED = ("name", "version", "description", "author", "contexts", "repository")


def close_connections_named(name: str) -> int:
    """Have the broker close our connections called `name` (and nobody else's)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    )
    closed = 0
    for line in listing.stdout.splitlines():
        pid, _, props = line.partition("\t")
        if f'{{"connection_name","{name}"}}' in props:
            subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], check=True)
            closed += 1
    return closed


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
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    connection.channel().exchange_delete(name)
    connection.close()


def make_heartbeat(queue: str, exchange: str = HEARTBEAT_EXCHANGE, uri: str = URI) -> Heartbeat:
    return Heartbeat(uri, queue, 300.0, exchange=exchange, client_name=f"test-hb-{queue}")


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
    listener = Listener(exchange)
    heartbeat = make_heartbeat("switchboard.test", exchange)
    try:
        assert heartbeat.beat() is True
        assert heartbeat.beat() is True
        messages = listener.heartbeats_from(heartbeat.id, 2)
    finally:
        heartbeat.close()
        listener.connection.close()
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
    listener = Listener(HEARTBEAT_EXCHANGE)  # declares it as Clowder v1 and pyclowder do
    heartbeat = make_heartbeat(f"switchboard.{uuid.uuid4().hex}")
    try:
        assert heartbeat.beat() is True
        assert len(listener.heartbeats_from(heartbeat.id, 1)) == 1
    finally:
        heartbeat.close()
        listener.connection.close()


@pytest.mark.rabbitmq
def test_beat_survives_the_broker_closing_its_idle_connection(exchange):
    listener = Listener(exchange)
    queue = f"switchboard.{uuid.uuid4().hex}"
    heartbeat = make_heartbeat(queue, exchange)
    try:
        assert heartbeat.beat() is True
        assert close_connections_named(f"test-hb-{queue}") == 1
        assert heartbeat.beat() is True
        assert len(listener.heartbeats_from(heartbeat.id, 2)) == 2
    finally:
        heartbeat.close()
        listener.connection.close()


@pytest.mark.rabbitmq
def test_failed_beat_is_reported_not_raised(exchange):
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    connection.channel().exchange_declare(exchange, exchange_type="direct")  # the wrong type
    connection.close()
    heartbeat = make_heartbeat("switchboard.test", exchange)
    try:
        assert heartbeat.beat() is False
    finally:
        heartbeat.close()


def test_unreachable_broker_makes_beat_return_false():
    heartbeat = make_heartbeat("q", uri="amqp://guest:guest@127.0.0.1:1/%2f")
    assert heartbeat.beat() is False
