"""Tests of ExtractorQueueSink against the real RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from switchboard.errors import BrokerError, DeliveryFailed, MessageNotEncodable
from switchboard.sinks.extractor_queue import ExtractorQueueSink
from tests.broker import URI, close_connections_named, side_channel

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def queues() -> Iterator[list[str]]:
    """Names of extractor queues for this test; deleted afterwards."""
    names: list[str] = []
    yield names
    with side_channel() as cleanup:
        for name in names:
            cleanup.queue_delete(name)


@pytest.fixture
def sink() -> Iterator[ExtractorQueueSink]:
    made = ExtractorQueueSink(URI, client_name=f"test-sink-{uuid.uuid4().hex}")
    yield made
    made.close()


def extractor_queue(queues: list[str]) -> str:
    name = f"test.extractor.{uuid.uuid4().hex}"
    queues.append(name)
    return name


def test_sink_publishes_exactly_the_outbox_message_to_the_extractor_queue(
    sink, channel, queues, make_row
):
    queue = extractor_queue(queues)
    row = make_row(queue)
    sink.send(row)
    method, props, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None
    assert method.exchange == ""
    assert method.routing_key == queue
    assert json.loads(body) == row.body
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.message_id == row.submission.job_id
    assert props.correlation_id == row.properties["correlation_id"]
    assert props.reply_to == row.properties["reply_to"]
    assert props.headers == row.properties["headers"]


def test_sink_declares_the_queue_as_pyclowder_does_so_nothing_is_lost(
    sink, channel, queues, make_row
):
    queue = extractor_queue(queues)
    sink.send(make_row(queue))
    declared = channel.queue_declare(queue, durable=True)  # pyclowder's declaration agrees
    assert declared.method.message_count == 1


def test_queue_deleted_after_declaration_makes_the_message_unroutable(
    sink, channel, queues, make_row
):
    queue = extractor_queue(queues)
    sink.send(make_row(queue, n=1))
    channel.queue_delete(queue)
    with pytest.raises(DeliveryFailed) as caught:
        sink.send(make_row(queue, n=2))
    assert isinstance(caught.value.__cause__, pika.exceptions.UnroutableError)


def test_queue_declared_differently_fails_that_row_not_the_sink(sink, channel, queues, make_row):
    odd, fine = extractor_queue(queues), extractor_queue(queues)
    channel.queue_declare(odd, durable=True, arguments={"x-max-priority": 5})
    with pytest.raises(DeliveryFailed, match="PRECONDITION_FAILED"):
        sink.send(make_row(odd))
    sink.send(make_row(fine))
    assert channel.queue_declare(fine, passive=True).method.message_count == 1


def test_send_many_delivers_every_row_and_reports_each(sink, channel, queues, make_row):
    first, second = extractor_queue(queues), extractor_queue(queues)
    rows = [make_row(first, n=i) for i in range(5)] + [make_row(second, n=9)]
    results = sink.send_many(rows)
    assert [(r.submission.job_id, e) for r, e in results] == [
        (r.submission.job_id, None) for r in rows
    ]
    assert channel.queue_declare(first, passive=True).method.message_count == 5
    assert channel.queue_declare(second, passive=True).method.message_count == 1


def test_send_many_fails_only_the_rows_that_could_not_be_delivered(sink, channel, queues, make_row):
    gone, odd, fine = extractor_queue(queues), extractor_queue(queues), extractor_queue(queues)
    sink.send(make_row(gone, n=0))
    channel.queue_delete(gone)
    channel.queue_declare(odd, durable=True, arguments={"x-max-priority": 5})
    rows = [make_row(gone, n=1), make_row(fine, n=2), make_row(odd, n=3), make_row(fine, n=4)]
    outcome = [type(error).__name__ if error else "ok" for _, error in sink.send_many(rows)]
    assert outcome == ["DeliveryFailed", "ok", "DeliveryFailed", "ok"]
    assert channel.queue_declare(fine, passive=True).method.message_count == 2


def test_sink_reopens_a_connection_the_broker_closed_while_it_was_idle(
    sink, channel, queues, make_row
):
    queue = extractor_queue(queues)
    sink.send(make_row(queue, n=1))
    assert close_connections_named(sink._link.client_name) == 1
    sink.send(make_row(queue, n=2))
    assert channel.queue_declare(queue, passive=True).method.message_count == 2


def test_unreachable_broker_raises_broker_error_without_the_password(make_row):
    sink = ExtractorQueueSink("amqp://guest:pw-s3cret-9@127.0.0.1:1/%2f")
    with pytest.raises(BrokerError) as caught:
        sink.send(make_row("anything"))
    assert "pw-s3cret-9" not in str(caught.value)


def _renamed(row, extractor: str):
    """The same row addressed to another queue (as a templated extractor name would give)."""
    from dataclasses import replace

    return replace(row, submission=replace(row.submission, extractor=extractor))


def test_a_queue_name_over_255_bytes_fails_its_row_alone_and_the_other_40_of_the_chunk_go_out(
    sink, channel, queues, make_row
):
    queue = extractor_queue(queues)
    rows = [make_row(queue, n=i) for i in range(41)]
    rows[17] = _renamed(rows[17], "terra." + "é" * 150)  # 306 bytes of UTF-8
    results = sink.send_many(rows)
    assert [i for i, (_, error) in enumerate(results) if error is not None] == [17]
    error = results[17][1]
    assert isinstance(error, MessageNotEncodable)
    assert "306 bytes" in str(error) and "255" in str(error)
    assert rows[17].submission.job_id in str(error)
    assert channel.queue_declare(queue, passive=True).method.message_count == 40


def test_a_body_that_cannot_be_serialised_fails_its_row_alone(sink, channel, queues, make_row):
    from dataclasses import replace

    queue = extractor_queue(queues)
    good, bad = make_row(queue, n=1), make_row(queue, n=2)
    bad = replace(bad, body={**bad.body, "parameters": {"when": object()}})
    outcome = [type(e).__name__ if e else "ok" for _, e in sink.send_many([bad, good])]
    assert outcome == ["MessageNotEncodable", "ok"]
    assert channel.queue_declare(queue, passive=True).method.message_count == 1


def test_a_property_amqp_cannot_carry_fails_a_single_send_and_the_connection_stays_usable(
    sink, channel, queues, make_row
):
    from dataclasses import replace

    queue = extractor_queue(queues)
    bad = make_row(queue, n=1)
    bad = replace(bad, properties={**bad.properties, "correlation_id": "c" * 300})
    sink.send(make_row(queue, n=0))
    with pytest.raises(MessageNotEncodable, match="ShortStringTooLong"):
        sink.send(bad)
    generation = sink._link.generation
    sink.send(make_row(queue, n=2))
    assert sink._link.generation == generation  # no reconnect: the connection was never at fault
    assert channel.queue_declare(queue, passive=True).method.message_count == 2


def test_a_name_too_long_for_amqp_is_a_message_fault_not_a_lost_connection(channel):
    from switchboard import amqp

    with pytest.raises(MessageNotEncodable, match="255 bytes"), amqp.translated_errors("declaring"):
        channel.queue_declare("q" * 300, durable=True)
    assert channel.is_open
