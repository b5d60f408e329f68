"""Tests of RabbitSource on the real RabbitMQ: batching, acks, dead letters, delays, reconnects."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from switchboard.errors import BrokerError
from switchboard.metrics import Metrics
from switchboard.settings import Settings
from switchboard.source import (
    DELAY_HEADER,
    ERROR_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    RabbitSource,
)
from tests.broker import URI, close_connections_named

pytestmark = pytest.mark.rabbitmq

FIXTURES = Path(__file__).parent / "fixtures"


class Broker:
    """A side connection the test uses to publish and inspect queues."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(URI))
        self.channel = self.connection.channel()
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def publish(self, queue: str, body: bytes, **properties) -> None:
        self.channel.basic_publish("", queue, body, pika.BasicProperties(**properties))

    def get(self, queue: str, timeout_s: float = 5.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return method, props, body
            self.connection.sleep(0.05)
        return None, None, None

    def count(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def cleanup(self) -> None:
        for queue in self.queues:
            self.channel.queue_delete(queue)
        for exchange in self.exchanges:
            self.channel.exchange_delete(exchange)
        self.connection.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    side = Broker()
    yield side
    side.cleanup()


@pytest.fixture
def make_source(broker: Broker):
    sources: list[RabbitSource] = []

    def make(**overrides) -> RabbitSource:
        queue = f"test.{uuid.uuid4().hex}"
        broker.queues += [queue, f"error.{queue}", f"retry.{queue}", f"{queue}.status"]
        settings = Settings(
            rabbitmq_uri=URI,
            queue=queue,
            prefetch_count=overrides.pop("prefetch_count", 50),
            clowder_retry_delay_s=overrides.pop("clowder_retry_delay_s", 0.2),
            legacy_exchange_bind=overrides.pop("legacy_exchange_bind", False),
            max_event_bytes=overrides.pop("max_event_bytes", 1_048_576),
            max_unacked_bytes=overrides.pop("max_unacked_bytes", 268_435_456),
        )
        source = RabbitSource(
            settings, idle_poll_s=0.1, client_name=f"test-source-{queue}", **overrides
        )
        source.connect()
        sources.append(source)
        return source

    yield make
    for source in sources:
        with contextlib.suppress(BrokerError):
            source.stop()


def fixture_record(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def next_nonempty(batches, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    for batch in batches:
        if batch or time.monotonic() > deadline:
            return batch
    return []


def three_published_in_one_batch(source: RabbitSource, broker: Broker) -> list:
    """Publish b"0", b"1", b"2" and gather them, unacked, into one batch."""
    for i in range(3):
        broker.publish(source.queue, str(i).encode())
    batches = source.batches(3, 1.0)
    batch = next_nonempty(batches)
    while len(batch) < 3:
        batch += next_nonempty(batches)
    return batch


def test_published_event_arrives_in_a_batch_with_its_properties(make_source, broker):
    source = make_source()
    record = fixture_record("v1_dataset_file_added.json")
    body = json.dumps(record["body"]).encode()
    broker.publish(
        source.queue,
        body,
        content_type="application/json",
        correlation_id="corr-1",
        reply_to="clowder.a1b2c3d4e5",
        delivery_mode=2,
        message_id="msg-1",
        headers={"h": "v"},
    )
    batch = next_nonempty(source.batches(10, 0.05))
    assert len(batch) == 1
    delivery = batch[0]
    assert delivery.body == body
    assert delivery.routing_key == source.queue
    assert delivery.redelivered is False
    assert delivery.properties == {
        "content_type": "application/json",
        "correlation_id": "corr-1",
        "reply_to": "clowder.a1b2c3d4e5",
        "delivery_mode": 2,
        "message_id": "msg-1",
        "headers": {"h": "v"},
    }


def test_batches_hold_at_most_max_size_messages_in_publish_order(make_source, broker):
    source = make_source()
    for i in range(7):
        broker.publish(source.queue, str(i).encode())
    batches = source.batches(3, 0.5)
    seen: list[list[bytes]] = []
    while sum(len(b) for b in seen) < 7:
        batch = next_nonempty(batches)
        assert batch, "messages stopped arriving"
        seen.append([d.body for d in batch])
    assert all(len(b) <= 3 for b in seen)
    assert [m for b in seen for m in b] == [str(i).encode() for i in range(7)]


def test_an_idle_queue_yields_empty_batches_so_the_caller_can_do_other_work(make_source):
    source = make_source()
    assert next(source.batches(10, 0.05)) == []


def test_ack_through_acknowledges_the_whole_batch(make_source, broker):
    source = make_source()
    batch = three_published_in_one_batch(source, broker)
    source.ack_through(batch[-1].delivery_tag)
    source.stop()
    assert broker.count(source.queue) == 0


def test_ack_through_leaves_later_deliveries_unacked(make_source, broker):
    source = make_source()
    batch = three_published_in_one_batch(source, broker)
    source.ack_through(batch[1].delivery_tag)
    source.stop()  # hands the third back to the queue
    assert broker.count(source.queue) == 1
    assert broker.get(source.queue)[2] == b"2"


def test_dead_letter_keeps_body_and_properties_and_says_why(make_source, broker):
    source = make_source()
    broker.publish(
        source.queue,
        b"not json",
        content_type="application/json",
        correlation_id="corr-9",
        reply_to="clowder.x",
        delivery_mode=2,
        headers={"kept": "yes"},
    )
    broker.publish(source.queue, b"second")
    batches = source.batches(1, 0.05)
    bad = next_nonempty(batches)[0]
    source.dead_letter(bad, "body is not valid JSON")
    _method, props, body = broker.get(f"error.{source.queue}")
    assert body == b"not json"
    assert props.content_type == "application/json"
    assert props.correlation_id == "corr-9"
    assert props.reply_to == "clowder.x"
    assert props.delivery_mode == 2
    assert props.headers == {
        "kept": "yes",
        ERROR_HEADER: "body is not valid JSON",
        ORIGINAL_ROUTING_KEY_HEADER: source.queue,
    }
    source.stop()
    assert broker.count(source.queue) == 1  # only the dead-lettered delivery was acked
    assert broker.get(source.queue)[2] == b"second"


def test_dead_letter_to_a_deleted_error_queue_declares_it_again_and_moves_the_message(
    make_source, broker
):
    source = make_source()
    broker.publish(source.queue, b"poison")
    delivery = next_nonempty(source.batches(1, 0.05))[0]
    broker.channel.queue_delete(f"error.{source.queue}")
    source.dead_letter(delivery, "bad")
    source.stop()
    _method, props, body = broker.get(f"error.{source.queue}")
    assert (body, props.headers[ERROR_HEADER]) == (b"poison", "bad")
    assert broker.get(source.queue, timeout_s=1.0)[2] is None  # acked: not handed back


def test_delayed_delivery_comes_back_after_the_retry_delay_with_its_routing_key(
    make_source, broker
):
    source = make_source(clowder_retry_delay_s=0.3)
    broker.publish(source.queue, b"wait for clowder", correlation_id="c")
    batches = source.batches(1, 0.05)
    first = next_nonempty(batches)[0]
    source.delay(first, "Clowder unavailable")
    again = next_nonempty(batches, timeout_s=10)[0]
    assert again.body == b"wait for clowder"
    assert again.routing_key == source.queue
    assert again.properties["correlation_id"] == "c"
    assert again.properties["headers"][DELAY_HEADER] == "Clowder unavailable"
    source.ack_through(again.delivery_tag)


def test_a_changed_retry_delay_still_connects_and_delays_by_the_new_value(make_source, broker):
    first = make_source(clowder_retry_delay_s=30)
    first.stop()
    settings = dataclasses.replace(first.settings, clowder_retry_delay_s=0.2)
    source = RabbitSource(settings, idle_poll_s=0.1, client_name=f"test-source-{first.queue}")
    source.connect()  # before: PRECONDITION_FAILED (inequivalent arg x-message-ttl), forever
    try:
        broker.publish(source.queue, b"wait")
        batches = source.batches(1, 0.05)
        source.delay(next_nonempty(batches)[0], "Clowder unavailable")
        again = next_nonempty(batches, timeout_s=10)[0]  # 0.2 s, not 30 s
        assert again.body == b"wait"
        source.ack_through(again.delivery_tag)
    finally:
        source.stop()


def test_delay_restores_a_legacy_routing_key_the_event_type_depends_on(make_source, broker):
    exchange = f"clowder.{uuid.uuid4().hex}"
    broker.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    broker.exchanges.append(exchange)
    source = make_source(legacy_exchange_bind=True, legacy_exchange=exchange)
    broker.channel.basic_publish(exchange, "clowder.dataset.file.added", b"{}")
    batches = source.batches(1, 0.05)
    first = next_nonempty(batches)[0]
    assert first.routing_key == "clowder.dataset.file.added"
    source.delay(first, "later")
    again = next_nonempty(batches, timeout_s=10)[0]
    assert again.routing_key == "clowder.dataset.file.added"


def test_a_missing_legacy_exchange_does_not_stop_consuming(make_source, broker):
    source = make_source(legacy_exchange_bind=True, legacy_exchange=f"absent.{uuid.uuid4().hex}")
    broker.publish(source.queue, b"direct")
    assert next_nonempty(source.batches(1, 0.05))[0].body == b"direct"


def test_stop_hands_unacked_messages_back_to_the_queue(make_source, broker):
    source = make_source()
    broker.publish(source.queue, b"a")
    broker.publish(source.queue, b"b")
    batches = source.batches(1, 0.05)
    next_nonempty(batches)
    source.stop()
    assert broker.count(source.queue) == 2


def test_lost_connection_raises_broker_error_and_reconnect_resumes(make_source, broker):
    source = make_source()
    broker.publish(source.queue, b"survives")
    batches = source.batches(1, 0.05)
    delivery = next_nonempty(batches)[0]
    assert close_connections_named(source.client_name) == 1
    with pytest.raises(BrokerError):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            next(batches)
    with pytest.raises(BrokerError):
        source.ack_through(delivery.delivery_tag)
    source.reconnect()
    again = next_nonempty(source.batches(1, 0.05))[0]
    assert again.body == b"survives"
    assert again.redelivered is True
    source.ack_through(again.delivery_tag)


def test_error_messages_never_show_the_broker_password(broker):
    settings = Settings(rabbitmq_uri="amqp://guest:p4ss-w0rd-x@127.0.0.1:1/%2f", queue="unused")
    with pytest.raises(BrokerError) as caught:
        RabbitSource(settings).connect()
    assert "p4ss-w0rd-x" not in str(caught.value)


def test_each_delay_counts_itself_in_a_header_the_processor_caps(make_source, broker):
    from switchboard.delays import DELAY_COUNT_HEADER, delay_count

    source = make_source(clowder_retry_delay_s=0.1)
    broker.publish(source.queue, b"wait for clowder")
    batches = source.batches(1, 0.05)
    delivery = next_nonempty(batches)[0]
    assert delay_count(delivery.properties) == 0
    seen = []
    for reason in ("first", "second", "third"):
        source.delay(delivery, reason)
        delivery = next_nonempty(batches, timeout_s=10)[0]
        seen.append(delivery.properties["headers"][DELAY_COUNT_HEADER])
    assert seen == [1, 2, 3]
    assert delay_count(delivery.properties) == 3
    assert delivery.properties["headers"][DELAY_HEADER] == "third"
    source.ack_through(delivery.delivery_tag)


def gather(source, batches, count: int, timeout_s: float = 10.0) -> list[list]:
    """Batches (empty ones skipped) until `count` deliveries came, each batch acked."""
    got: list[list] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(b) for b in got) < count and time.monotonic() < deadline:
        batch = next(batches)
        if batch:
            got.append(batch)
            source.ack_through(batch[-1].delivery_tag)
    return got


def test_bodies_over_the_size_limit_are_dead_lettered_on_arrival_and_the_good_ones_come_through(
    make_source, broker
):
    metrics = Metrics()
    source = make_source(max_event_bytes=1000, metrics=metrics)
    for n in range(3):
        broker.publish(source.queue, b"x" * (5000 + n))
    broker.publish(source.queue, b"good-1")
    broker.publish(source.queue, b"good-2")
    batches = source.batches(10, 0.05)
    got = gather(source, batches, 2)
    assert [d.body for batch in got for d in batch] == [b"good-1", b"good-2"]
    assert source.unacked_bytes == 0
    reasons = sorted(broker.get(f"error.{source.queue}")[1].headers[ERROR_HEADER] for _ in range(3))
    assert reasons == [f"body is {5000 + n} bytes, over the 1000-byte limit" for n in range(3)]
    assert metrics.value("switchboard_dead_letters_total", reason="oversized") == 3
    source.stop()
    assert broker.count(source.queue) == 0


def test_the_consumer_never_holds_more_body_bytes_than_its_budget_allows(make_source, broker):
    source = make_source(prefetch_count=50, max_event_bytes=1000, max_unacked_bytes=3000)
    for n in range(12):
        broker.publish(source.queue, b"%03d" % n + b"." * 897)  # 900 bytes each
    batches = source.batches(100, 0.2)
    seen: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(seen) < 12 and time.monotonic() < deadline:
        batch = next(batches)
        if not batch:
            continue
        assert source.unacked_bytes <= 3000  # three 900-byte bodies; a fourth would be over
        seen += [d.body[:3] for d in batch]
        source.ack_through(batch[-1].delivery_tag)
    assert sorted(seen) == [b"%03d" % n for n in range(12)]
    source.stop()


def test_a_run_of_oversized_bodies_drops_the_prefetch_to_one_and_ordinary_ones_restore_it(
    make_source, broker
):
    source = make_source(prefetch_count=8, max_event_bytes=1000)
    assert source.prefetch == 8
    for _ in range(3):
        broker.publish(source.queue, b"x" * 2000)
    batches = source.batches(10, 0.05)
    for _ in range(30):
        next(batches)
        if broker.count(f"error.{source.queue}") == 3:
            break
    assert source.prefetch == 1
    for n in range(40):
        broker.publish(source.queue, b"small %d" % n)
    got = gather(source, batches, 40)
    assert sorted(d.body for batch in got for d in batch) == sorted(
        b"small %d" % n for n in range(40)
    )
    for round_ in range(10):  # each settled window of ordinary bodies doubles it again
        if source.prefetch == 8:
            break
        for n in range(8):
            broker.publish(source.queue, b"more %d %d" % (round_, n))
        gather(source, batches, 8)
    assert source.prefetch == 8
    source.stop()


def test_a_quiet_queue_hands_over_what_has_arrived_without_waiting_for_a_full_batch(
    make_source, broker
):
    source = make_source()
    for i in range(3):
        broker.publish(source.queue, str(i).encode())
    time.sleep(0.2)  # pushed to the consumer
    # a batch of up to 100 that could wait an hour: it is handed over with what is there
    batch = next_nonempty(source.batches(100, 3600.0))
    assert [d.body for d in batch] == [b"0", b"1", b"2"][: len(batch)]
    assert batch


def test_deliveries_in_hand_are_announced_once_while_the_source_waits_for_the_rest(
    make_source, broker
):
    source = make_source()
    announced: list[int] = []
    source.on_arrival = lambda delivery: announced.append(delivery.delivery_tag)
    for i in range(5):
        broker.publish(source.queue, str(i).encode())
    time.sleep(0.2)  # all five pushed to the consumer
    batches = source.batches(3, 0.3)
    first = next_nonempty(batches)
    assert len(first) == 3 and announced == []  # a full batch has nothing to wait for
    second = next_nonempty(batches)  # a backlog: it waits for a third, announcing the two first
    assert [d.body for d in second] == [b"3", b"4"]
    assert announced == [d.delivery_tag for d in second]
