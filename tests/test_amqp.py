"""Tests of switchboard.amqp against the real RabbitMQ at 127.0.0.1:5672."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from switchboard import amqp
from switchboard.errors import BrokerError, DeliveryFailed
from tests.broker import URI, close_connections_named, side_channel

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Queue and exchange names for this test; every queue named here is deleted afterwards."""
    created: list[str] = []
    yield created
    with side_channel() as cleanup:
        for name in created:
            if name.startswith("exchange:"):
                cleanup.exchange_delete(name.removeprefix("exchange:"))
            else:
                cleanup.queue_delete(name)


def unique(prefix: str = "test") -> str:
    return f"{prefix}.{uuid.uuid4().hex}"


def test_redact_uri_hides_the_password_and_keeps_the_rest():
    redacted = amqp.redact_uri("amqp://user:s3cr%40t@rabbit.example:5673/vhost?heartbeat=5")
    assert "s3cr" not in redacted
    assert redacted == "amqp://user:***@rabbit.example:5673/vhost?heartbeat=5"
    assert amqp.redact_uri("amqp://rabbit.example/%2f") == "amqp://rabbit.example/%2f"


def test_connect_sets_broker_heartbeat_and_blocked_connection_timeout():
    params = amqp.connection_parameters(URI + "?heartbeat=600", heartbeat_s=30)
    assert params.heartbeat == 30
    assert params.blocked_connection_timeout == amqp.DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S
    connection = amqp.connect(URI, heartbeat_s=30)
    try:
        assert connection.is_open
    finally:
        connection.close()


def test_refused_connection_raises_broker_error_without_the_password():
    with pytest.raises(BrokerError) as caught:
        amqp.connect("amqp://guest:hunter2-secret@127.0.0.1:1/%2f")
    assert "hunter2-secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
    assert isinstance(caught.value.__cause__, pika.exceptions.AMQPConnectionError)


def test_wrong_password_raises_broker_error_that_does_not_repeat_it():
    with pytest.raises(BrokerError) as caught:
        amqp.connect("amqp://guest:not-the-password-42@127.0.0.1:5672/%2f")
    assert "not-the-password-42" not in str(caught.value)
    assert caught.value.__cause__ is not None


def test_unroutable_mandatory_publish_becomes_delivery_failed(channel):
    channel.confirm_delivery()
    with pytest.raises(DeliveryFailed) as caught, amqp.translated_errors("publishing", uri=URI):
        channel.basic_publish("", unique("never-declared"), b"{}", mandatory=True)
    assert isinstance(caught.value.__cause__, pika.exceptions.UnroutableError)


def test_channel_closed_by_the_broker_becomes_broker_error(channel):
    with pytest.raises(BrokerError) as caught, amqp.translated_errors("declaring", uri=URI):
        channel.exchange_declare(unique("missing-exchange"), passive=True)
    assert isinstance(caught.value.__cause__, pika.exceptions.ChannelClosedByBroker)
    assert "404" in str(caught.value)


def test_extractor_queue_is_declared_exactly_as_pyclowder_declares_it(channel, names):
    queue = unique()
    names.append(queue)
    amqp.declare_extractor_queue(channel, queue)
    channel.queue_declare(queue=queue, durable=True)  # pyclowder's own declaration agrees
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare(queue=queue, durable=False)  # so it really is durable


def test_input_queues_are_the_queue_its_error_queue_and_a_retry_queue(channel, names):
    queue = unique()
    names.extend([queue, f"error.{queue}", f"retry.{queue}"])
    amqp.declare_input_queues(channel, queue)
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_declare(queue=f"error.{queue}", durable=True)
    channel.queue_declare(
        queue=f"retry.{queue}",
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue},
    )  # no x-message-ttl: the delay is per message, so any delay setting declares it alike


def test_retry_queue_returns_each_message_after_its_own_expiration(channel, names):
    queue = unique()
    names.extend([queue, f"retry.{queue}"])
    amqp.declare_extractor_queue(channel, queue)
    amqp.declare_retry_queue(channel.connection, queue)
    later = pika.BasicProperties(expiration=amqp.expiration_ms(0.1))
    channel.basic_publish("", f"retry.{queue}", b"later", later)
    _method, properties, body = _get_message_within(channel, queue, 10.0)
    assert body == b"later"
    assert properties.expiration is None  # the broker drops it when dead-lettering


def test_a_retry_queue_with_a_ttl_from_an_earlier_version_is_reported_and_kept(
    channel, names, caplog
):
    queue = unique()
    names.extend([queue, f"retry.{queue}"])
    arguments = {
        "x-message-ttl": 30000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }
    channel.queue_declare(queue=f"retry.{queue}", durable=True, arguments=arguments)
    amqp.declare_extractor_queue(channel, queue)
    with caplog.at_level("ERROR", logger="switchboard.amqp"):
        assert amqp.declare_retry_queue(channel.connection, queue) == f"retry.{queue}"
    [record] = caplog.records
    assert f"retry.{queue}" in record.getMessage() and "delete_queue" in record.getMessage()
    assert channel.is_open  # the refusal closed only a throwaway channel
    soon = pika.BasicProperties(expiration=amqp.expiration_ms(0.1))
    channel.basic_publish("", f"retry.{queue}", b"still works", soon)
    assert _get_message_within(channel, queue, 10.0)[2] == b"still works"


def test_expiration_is_whole_milliseconds_as_text():
    assert amqp.expiration_ms(0.25) == "250"
    assert amqp.expiration_ms(30) == "30000"
    assert amqp.expiration_ms(-1) == "0"


def test_legacy_binding_routes_topic_events_to_our_queue(channel, names):
    exchange, queue = unique("clowder"), unique()
    names.extend([queue, f"exchange:{exchange}"])
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)  # as Clowder v1 does
    amqp.declare_extractor_queue(channel, queue)
    amqp.bind_legacy_exchange(channel, queue, ["*.dataset.file.added"], exchange)
    channel.basic_publish(exchange, "clowder.dataset.file.added", b"added")
    channel.basic_publish(exchange, "clowder.file.image.tiff", b"not for us")
    assert _get_within(channel, queue, 5.0) == b"added"
    assert channel.basic_get(queue, auto_ack=True)[2] is None


def test_legacy_binding_never_redeclares_the_exchange_with_a_type(channel, names):
    exchange, queue = unique("clowder"), unique()
    names.extend([queue, f"exchange:{exchange}"])
    channel.exchange_declare(exchange, durable=True)  # clowder2 declares it without a type
    amqp.declare_extractor_queue(channel, queue)
    amqp.bind_legacy_exchange(channel, queue, ["*.dataset.file.added"], exchange)
    assert channel.is_open


def test_legacy_binding_to_a_missing_exchange_fails_instead_of_creating_it(channel, names):
    queue = unique()
    names.append(queue)
    amqp.declare_extractor_queue(channel, queue)
    with pytest.raises(BrokerError), amqp.translated_errors("binding", uri=URI):
        amqp.bind_legacy_exchange(channel, queue, ["*.dataset.file.added"], unique("absent"))


def test_properties_survive_a_round_trip_through_a_plain_dict():
    original = {
        "content_type": "application/json",
        "correlation_id": "c1",
        "reply_to": "clowder.abc",
        "delivery_mode": 2,
        "headers": {"x": "y"},
        "message_id": "m1",
        "not_a_property": "ignored",
    }
    props = amqp.properties_from_dict(original)
    back = amqp.properties_to_dict(props)
    del original["not_a_property"]
    assert back == original


def test_republished_properties_drop_user_id_and_expiration():
    props = amqp.properties_from_dict(
        {"user_id": "clowder", "expiration": "1000", "message_id": "m"}, republish=True
    )
    assert props.user_id is None and props.expiration is None and props.message_id == "m"


def test_lazy_connection_reopens_after_the_broker_closed_it():
    name = unique("lazy")
    link = amqp.LazyConnection(URI, client_name=name)
    try:
        first = link.get()
        assert close_connections_named(name) == 1
        deadline = time.monotonic() + 10
        second = link.get()
        while second is first and time.monotonic() < deadline:
            time.sleep(0.05)
            second = link.get()
        assert second is not first and second.is_open
        assert link.generation == 2
    finally:
        link.close()


def _get_within(channel, queue: str, timeout_s: float) -> bytes | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _method, _props, body = channel.basic_get(queue, auto_ack=True)
        if body is not None:
            return body
        channel.connection.sleep(0.05)
    return None


def _get_message_within(channel, queue: str, timeout_s: float) -> tuple:
    """(method, properties, body) of the next message of `queue`, or three Nones."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return method, properties, body
        channel.connection.sleep(0.05)
    return None, None, None
