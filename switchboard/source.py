"""The input-queue consumer: batches of deliveries from RabbitMQ, acked only when told."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from . import amqp
from .amqp_delivery import (
    DELAY_HEADER,
    ERROR_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    AmqpDelivery,
    short_reason,
)
from .delays import DELAY_COUNT_HEADER, delay_count
from .delivery_budget import DeliveryBudget
from .errors import BrokerError, DeliveryFailed
from .ports import Metrics, NullMetrics
from .settings import Settings

log = logging.getLogger(__name__)


class RabbitSource:
    """Consume `settings.queue` and our status queue in batches (implements `ports.Source`).

    Nothing connects until `batches()` (or `connect()`) is called. pika's BlockingConnection
    services broker heartbeats only while one of its methods runs; `batches()` runs it while
    waiting for messages, and a caller that holds a batch for long (longer than about half of
    `amqp.DEFAULT_HEARTBEAT_S`) should call `keepalive()` between steps.

    Every method raises BrokerError when the broker fails; the caller backs off and calls
    `reconnect()`. Unacked messages of the lost connection are redelivered by the broker.

    Memory is bounded whatever the bodies weigh (see `DeliveryBudget`): a body over
    `max_event_bytes` can never be processed, so it is dead-lettered as soon as it arrives
    instead of being held for a batch, and the consumer's prefetch keeps prefetch x body size
    within `max_unacked_bytes`. A consumer's prefetch is fixed when it starts (RabbitMQ applies
    `basic.qos` to later consumers only), so changing it cancels the consumer and starts
    another; deliveries pika had read but not handed over go back to the queue (redelivered).

    `on_arrival`, when set, is called once with each delivery while the source waits for the
    rest of its batch (`parse_ahead.ParseAhead`): work that needs only the delivery, parsing, then
    overlaps the wait for the broker instead of following it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        idle_poll_s: float = 1.0,
        heartbeat_s: int = amqp.DEFAULT_HEARTBEAT_S,
        legacy_exchange: str = amqp.LEGACY_EXCHANGE,
        client_name: str = "switchboard",
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics` counts the bodies dead-lettered on arrival."""
        self.settings = settings
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.queue = settings.queue
        self.error_queue = amqp.error_queue_name(settings.queue)
        self.retry_queue = amqp.retry_queue_name(settings.queue)
        self.idle_poll_s = idle_poll_s
        self.heartbeat_s = heartbeat_s
        self.legacy_exchange = legacy_exchange
        self.client_name = client_name
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._pending: collections.deque[AmqpDelivery] = collections.deque()
        self._announced = 0  # how many of `_pending`, from the left, `on_arrival` has seen
        self.on_arrival: Callable[[AmqpDelivery], object] | None = None
        self._oversized: collections.deque[AmqpDelivery] = collections.deque()
        self._budget = DeliveryBudget(
            max_bytes=settings.max_unacked_bytes,
            max_event_bytes=settings.max_event_bytes,
            max_prefetch=settings.prefetch_count,
        )
        self._consumer_tag: str | None = None
        self._status_tag: str | None = None
        self.status_queue = settings.status_queue_name
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def connect(self) -> None:
        """Open the connection, declare our queues, bind (if asked) and start consuming."""
        if self.connected and self._channel is not None and self._channel.is_open:
            return
        self._drop_connection()
        uri = self.settings.rabbitmq_uri
        connection = amqp.connect(uri, heartbeat_s=self.heartbeat_s, client_name=self.client_name)
        try:
            with amqp.translated_errors(f"setting up queue {self.queue}", uri=uri):
                channel = connection.channel()
                amqp.declare_input_queues(channel, self.queue)
                amqp.declare_extractor_queue(channel, self.status_queue)
                if self.settings.legacy_exchange_bind:
                    self._bind_legacy(connection)
                channel.confirm_delivery()
                self._budget.forget_all()
                self._channel = channel
                self._consume(self._budget.max_prefetch)
        except BrokerError:
            amqp.close_quietly(connection)
            self._channel = self._consumer_tag = self._status_tag = None
            raise
        self._connection = connection
        self._stopping = False
        log.info("consuming %s", self.queue, extra={"queue": self.queue})

    def _bind_legacy(self, connection: pika.BlockingConnection) -> None:
        """Bind on a throwaway channel: a missing exchange closes the channel it was asked on."""
        keys = self.settings.legacy_binding_keys
        channel = connection.channel()
        try:
            amqp.bind_legacy_exchange(channel, self.queue, keys, self.legacy_exchange)
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.warning(
                "not bound to exchange %r (%s); will try again on the next reconnect",
                self.legacy_exchange,
                amqp.describe(exc),
            )
            return
        channel.close()

    def reconnect(self) -> None:
        """Drop whatever is left of the connection and connect afresh."""
        self._drop_connection()
        self.connect()

    def stop(self) -> None:
        """Stop consuming, hand unacked messages back to the queue and close the connection."""
        self._stopping = True
        if self._channel is None:
            return
        try:
            with amqp.translated_errors("stopping the consumer", uri=self.settings.rabbitmq_uri):
                if self._channel.is_open:
                    self._channel.stop_consuming()
                    self.nack_all_unacked()
        finally:
            self._drop_connection()

    def _drop_connection(self) -> None:
        amqp.close_quietly(self._connection)
        self._connection = None
        self._channel = None
        self._consumer_tag = self._status_tag = None
        self._pending.clear()
        self._announced = 0
        self._forget_held()

    def _forget_held(self) -> None:
        self._oversized.clear()
        self._budget.forget_all()

    def _require_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            raise BrokerError(f"not connected to RabbitMQ (queue {self.queue})")
        return self._channel

    # --- consuming -----------------------------------------------------------------------------

    def _on_message(
        self,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        props = amqp.properties_to_dict(properties)
        headers = props.get("headers") or {}
        original_key = headers.get(ORIGINAL_ROUTING_KEY_HEADER)
        routing_key = original_key if isinstance(original_key, str) else method.routing_key
        delivery = AmqpDelivery(
            delivery_tag=method.delivery_tag,
            body=body,
            properties=props,
            routing_key=routing_key,
            redelivered=bool(method.redelivered),
        )
        if self._budget.received(delivery.delivery_tag, len(body)):
            self._oversized.append(delivery)  # moved by `_after_pump`, outside this callback
        else:
            self._pending.append(delivery)

    def _after_pump(self) -> None:
        """After pika handed over deliveries: pause the consumer while the unsettled deliveries
        hold more bytes than the budget, restart it when the budget wants another prefetch,
        then dead-letter oversized deliveries at once."""
        budget = self._budget
        if self._consumer_tag is not None:
            if budget.over:
                log.info(
                    "pausing %s: unsettled deliveries hold %d bytes, over %d",
                    self.queue,
                    budget.held_bytes,
                    budget.max_bytes,
                )
                self._cancel()
            elif budget.wanted_prefetch() != budget.prefetch:
                self._cancel()
                self._consume(budget.wanted_prefetch())
        while self._oversized:
            delivery = self._oversized.popleft()
            reason = (
                f"body is {len(delivery.body)} bytes, over the"
                f" {self.settings.max_event_bytes}-byte limit"
            )
            log.warning("dead-lettering a message on arrival: %s", reason)
            self.dead_letter(delivery, reason)
            self.metrics.dead_lettered("oversized", 1)

    def _resume_if_room(self) -> None:
        """Consume again once the unsettled deliveries hold at most half of the budget, or
        restart the consumer with the higher prefetch the budget now allows."""
        if self._channel is None or self._stopping:
            return
        budget = self._budget
        if self._consumer_tag is None:
            if budget.room_to_resume:
                self._consume(budget.wanted_prefetch())
        elif budget.wanted_prefetch() > budget.prefetch:
            self._cancel()
            self._consume(budget.wanted_prefetch())

    def _consume(self, prefetch: int) -> None:
        channel = self._require_channel()
        channel.basic_qos(prefetch_count=prefetch)
        self._consumer_tag = channel.basic_consume(self.queue, self._on_message)
        # status updates share the channel (one ack sequence) and the byte budget
        self._status_tag = channel.basic_consume(self.status_queue, self._on_message)
        self._budget.started(prefetch)
        log.debug("consuming %s with prefetch %d", self.queue, prefetch)

    def _cancel(self) -> None:
        if self._consumer_tag is not None:
            self._require_channel().basic_cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._status_tag is not None:
            self._require_channel().basic_cancel(self._status_tag)
            self._status_tag = None

    @property
    def unacked_bytes(self) -> int:
        """Body bytes of the deliveries received and not yet acked or moved."""
        return self._budget.held_bytes

    @property
    def prefetch(self) -> int:
        """The prefetch the consumer has (or will have when it resumes)."""
        return self._budget.prefetch

    def batches(self, max_size: int, max_wait_s: float) -> Iterator[list[AmqpDelivery]]:
        """Yield lists of up to `max_size` deliveries, forever until `stop()`.

        A batch is what has arrived: once a first delivery is in, everything pika can read
        without waiting joins it (up to `max_size`). Only while there is a backlog (the batch
        before was full) does a short batch wait, up to `max_wait_s` after its first delivery,
        for the rest (the deliveries the broker sends once the last batch is acked): a busy
        queue gets full batches, a quiet one gets each event handled as soon as it arrives.
        When nothing arrives for `idle_poll_s` an empty list is yielded, so the caller can run
        its timers (relay, heartbeat) and notice a stop request.
        """
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.connect()
        backlog = False
        while not self._stopping:
            batch = self._gather(max_size, max_wait_s if backlog else 0.0)
            backlog = len(batch) >= max_size
            yield batch

    def _gather(self, max_size: int, max_wait_s: float) -> list[AmqpDelivery]:
        connection = self._connection
        if connection is None:
            raise BrokerError(f"not connected to RabbitMQ (queue {self.queue})")
        with amqp.translated_errors(f"consuming {self.queue}", uri=self.settings.rabbitmq_uri):
            self._resume_if_room()
            if not self._pending:
                connection.process_data_events(time_limit=self.idle_poll_s)
                self._after_pump()
                if not self._pending:
                    return []
            self._take_what_arrived(connection, max_size)
            deadline = time.monotonic() + max_wait_s
            while len(self._pending) < max_size:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    break
                self._announce_arrivals()
                connection.process_data_events(time_limit=remaining_s)
                self._after_pump()
        count = min(max_size, len(self._pending))
        self._announced = max(0, self._announced - count)
        return [self._pending.popleft() for _ in range(count)]

    def _announce_arrivals(self) -> None:
        """Hand `on_arrival` each delivery it has not seen yet (the wait for the rest of the
        batch is about to start: the broker sends while these are worked on)."""
        hook = self.on_arrival
        pending = self._pending
        if hook is None or self._announced >= len(pending):
            return
        for index in range(self._announced, len(pending)):
            hook(pending[index])
        self._announced = len(pending)

    def _take_what_arrived(self, connection: pika.BlockingConnection, max_size: int) -> None:
        """Read whatever the broker has already sent, without waiting for more."""
        while len(self._pending) < max_size:
            before = len(self._pending)
            connection.process_data_events(time_limit=0)
            self._after_pump()
            if len(self._pending) == before:
                return

    def keepalive(self) -> None:
        """Service broker heartbeats (and buffer newly arrived messages) without blocking."""
        if self._connection is None:
            return
        with amqp.translated_errors("keeping the connection alive", uri=self.settings.rabbitmq_uri):
            self._connection.process_data_events(time_limit=0)
            self._after_pump()

    # --- settling ------------------------------------------------------------------------------

    def ack_through(self, delivery_tag: int) -> None:
        """Acknowledge every delivery up to and including `delivery_tag` with one frame."""
        channel = self._require_channel()
        with amqp.translated_errors(f"acking {self.queue}", uri=self.settings.rabbitmq_uri):
            channel.basic_ack(delivery_tag=delivery_tag, multiple=True)
        self._budget.settled(delivery_tag, multiple=True)

    def nack_all_unacked(self) -> None:
        """Return every unacked delivery (including buffered ones) to the queue."""
        channel = self._require_channel()
        with amqp.translated_errors(f"requeueing {self.queue}", uri=self.settings.rabbitmq_uri):
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        self._pending.clear()
        self._announced = 0
        self._forget_held()

    def dead_letter(self, delivery: AmqpDelivery, reason: str) -> None:
        """Move one delivery to `error.<queue>`, intact but for a header saying why, then ack it."""
        self._move(delivery, self.error_queue, ERROR_HEADER, reason)

    def delay(self, delivery: AmqpDelivery, reason: str) -> None:
        """Park one delivery in `retry.<queue>`; it returns to our queue after the retry delay.

        The delay is the message's own `expiration` (the retry queue has no TTL of its own).
        The copy's `DELAY_COUNT_HEADER` counts its delays, so the processor can cap them.
        """
        expiration = amqp.expiration_ms(self.settings.clowder_retry_delay_s)
        count = {DELAY_COUNT_HEADER: delay_count(delivery.properties) + 1}
        self._move(
            delivery, self.retry_queue, DELAY_HEADER, reason, expiration=expiration, extra=count
        )

    def _move(
        self,
        delivery: AmqpDelivery,
        target: str,
        header: str,
        reason: str,
        *,
        expiration: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        channel = self._require_channel()
        properties = dict(delivery.properties)
        headers = dict(properties.get("headers") or {})
        headers[header] = short_reason(reason)
        headers.update(extra or {})
        headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, delivery.routing_key)
        properties["headers"] = headers
        props = amqp.properties_from_dict(properties, republish=True)
        props.expiration = expiration
        action = f"moving a message to {target}"
        try:
            with amqp.translated_errors(action, uri=self.settings.rabbitmq_uri):
                # The channel is in confirm mode: basic_publish returns once the broker has it.
                try:
                    channel.basic_publish("", target, delivery.body, props, mandatory=True)
                except pika.exceptions.UnroutableError:
                    self._redeclare(channel, target)
                    channel.basic_publish("", target, delivery.body, props, mandatory=True)
                channel.basic_ack(delivery_tag=delivery.delivery_tag, multiple=False)
            self._budget.settled(delivery.delivery_tag)
        except DeliveryFailed as exc:  # nacked, or unroutable even after redeclaring
            raise BrokerError(f"{exc}; reconnecting to try again") from exc

    def _redeclare(self, channel: BlockingChannel, target: str) -> None:
        """Declare `target` again: someone deleted it while we ran (a mandatory publish to it
        came back unroutable), and a dead letter or a delay must not be lost or stop us."""
        log.warning("queue %s is missing; declaring it again", target, extra={"queue": target})
        if target == self.retry_queue:
            amqp.declare_retry_queue(channel.connection, self.queue)
        else:
            amqp.declare_extractor_queue(channel, target)
