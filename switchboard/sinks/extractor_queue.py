"""Publishes outbox rows straight to extractor queues, the way Clowder does (protocol.md §4.3)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pika
import pika.exceptions
from pika import frame, spec
from pika.adapters.blocking_connection import BlockingChannel

from .. import amqp
from ..errors import BrokerError, DeliveryFailed, MessageNotEncodable
from ..ports import OutboxRow, Sink
from ..settings import Settings

MAX_NAME_BYTES = 255  # AMQP short strings: queue names, routing keys, most properties
PIKA_HEARTBEAT_GRACE_S = 5  # pika closes a silent connection `heartbeat + 5` s after its last frame


def encode_body(row: OutboxRow) -> bytes:
    """The row's body as UTF-8 JSON, as pyclowder expects it."""
    return json.dumps(row.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One row encoded for `basic_publish`: checked with pika's own encoder, nothing sent yet."""

    row: OutboxRow
    queue: str
    body: bytes
    properties: pika.BasicProperties


def wire_message(row: OutboxRow) -> WireMessage:
    """Encode `row` for its queue; MessageNotEncodable (naming the job and why) if it cannot be.

    Doing this before the first publish of a batch is what lets a bad row fail alone: a name
    over 255 bytes, a body that is not JSON or a property AMQP cannot carry would otherwise
    raise from inside pika halfway through a batch.
    """
    job = row.submission.job_id
    queue = row.submission.extractor
    size = len(queue.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise MessageNotEncodable(
            f"job {job}: extractor queue name {queue[:60]!r}... is {size} bytes; "
            f"AMQP allows at most {MAX_NAME_BYTES}"
        )
    try:
        body = encode_body(row)
        properties = amqp.properties_from_dict(row.properties)
        publish = spec.Basic.Publish(exchange="", routing_key=queue, mandatory=True)
        frame.Method(1, publish).marshal()
        frame.Header(1, len(body), properties).marshal()
    except Exception as exc:  # any failure to encode this one row is that row's fault alone
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise MessageNotEncodable(f"job {job}: message cannot be encoded: {reason}") from exc
    return WireMessage(row, queue, body, properties)


def heartbeat_for(timeout_s: float) -> int:
    """The broker heartbeat that makes pika notice a silent broker within about `timeout_s`."""
    return max(1, math.floor(timeout_s) - PIKA_HEARTBEAT_GRACE_S)


class ExtractorQueueSink(Sink):
    """Send `via: amqp` rows to the queue named by the row's extractor (implements `ports.Sink`).

    Each target queue is declared exactly as pyclowder declares it (durable, no arguments)
    before the first publish, so a message never vanishes into a queue that does not exist
    yet. Publishes are `mandatory` and confirmed: a returned or nacked message raises
    DeliveryFailed; a row that cannot be encoded raises MessageNotEncodable (it fails alone);
    a lost connection raises BrokerError and is reopened on the next call.

    `send` confirms each message (one round trip each); `send_many` publishes a batch inside
    one AMQP transaction and commits once, which is several times faster for large batches.
    With `timeout_s`, a broker that stops answering (or blocks publishers) is given up on
    after about that long (broker heartbeats and pika's blocked-connection timeout): the
    relay keeps it below its claim on the rows.
    """

    batched = True  # send_many publishes a chunk in one round trip

    def __init__(
        self,
        uri: str,
        *,
        heartbeat_s: int | None = None,
        timeout_s: float | None = None,
        client_name: str = "switchboard-sink",
    ) -> None:
        self.uri = uri
        if heartbeat_s is None:
            heartbeat_s = (
                amqp.DEFAULT_HEARTBEAT_S if timeout_s is None else heartbeat_for(timeout_s)
            )
        blocked_s = amqp.DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S if timeout_s is None else timeout_s
        self._link = amqp.LazyConnection(
            uri,
            heartbeat_s=heartbeat_s,
            client_name=client_name,
            blocked_connection_timeout_s=blocked_s,
        )
        self._generation = -1
        self._confirm_channel: BlockingChannel | None = None
        self._tx_channel: BlockingChannel | None = None
        self._declared: set[str] = set()
        self._returned: list[tuple[str, str | None]] = []

    def send(self, row: OutboxRow) -> None:
        """Publish one row and wait for the broker's confirm."""
        message = wire_message(row)
        try:
            with amqp.translated_errors(f"publishing to {message.queue}", uri=self.uri):
                refused = self._declare(confirm=True, queue=message.queue)
                if refused is not None:
                    raise refused
                channel = self._channel(confirm=True)
                channel.basic_publish(
                    "", message.queue, message.body, message.properties, mandatory=True
                )
        except BrokerError:
            self._forget_connection()
            raise

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]:
        """Publish `rows` in one transaction; each row paired with None or its failure.

        A row that cannot be encoded (MessageNotEncodable), whose queue the broker refuses or
        whose message is returned as unroutable (DeliveryFailed) fails alone; a lost
        connection fails the whole batch with BrokerError (nothing in an uncommitted
        transaction was delivered).
        """
        if not rows:
            return []
        unsendable: dict[int, Exception] = {}
        messages: list[WireMessage] = []
        for index, row in enumerate(rows):
            try:
                messages.append(wire_message(row))
            except MessageNotEncodable as exc:
                unsendable[index] = exc
        refused: dict[str, DeliveryFailed] = {}
        if messages:
            refused = self._publish_in_transaction(messages)
        returned = set(self._returned)
        results: list[tuple[OutboxRow, Exception | None]] = []
        for index, row in enumerate(rows):
            key = (row.submission.extractor, row.properties.get("message_id"))
            if index in unsendable:
                results.append((row, unsendable[index]))
            elif row.submission.extractor in refused:
                results.append((row, refused[row.submission.extractor]))
            elif key in returned:
                error = DeliveryFailed(
                    f"publishing to {row.submission.extractor}: message returned as unroutable"
                )
                results.append((row, error))
            else:
                results.append((row, None))
        return results

    def keepalive(self) -> None:
        """Answer the broker's heartbeats while idle (call from the thread that sends)."""
        self._link.keepalive()

    def close(self) -> None:
        self._forget_connection()

    # --- publishing ----------------------------------------------------------------------------

    def _publish_in_transaction(self, messages: Sequence[WireMessage]) -> dict[str, DeliveryFailed]:
        """Publish and commit; the queues the broker refused to declare, with why."""
        self._returned.clear()
        try:
            with amqp.translated_errors("publishing a batch of submissions", uri=self.uri):
                refused: dict[str, DeliveryFailed] = {}
                for queue in dict.fromkeys(m.queue for m in messages):
                    error = self._declare(confirm=False, queue=queue)
                    if error is not None:
                        refused[queue] = error
                channel = self._channel(confirm=False)
                # pika's blocking basic_publish writes and polls the socket after every
                # message; in a transaction nothing is answered before the commit, so the
                # frames go to pika's own channel and the commit flushes them all at once
                queued = channel._impl  # the Channel this BlockingChannel wraps (pika 1.x)
                for message in messages:
                    if message.queue in refused:
                        continue
                    queued.basic_publish(
                        "", message.queue, message.body, message.properties, mandatory=True
                    )
                channel.tx_commit()
                # basic.return frames precede commit-ok; this dispatches them to _on_return.
                self._link.get().process_data_events(time_limit=0)
        except BrokerError:
            self._forget_connection()
            raise
        return refused

    # --- channels ------------------------------------------------------------------------------

    def _channel(self, *, confirm: bool) -> BlockingChannel:
        connection = self._link.get()
        if self._generation != self._link.generation:
            self._generation = self._link.generation
            self._confirm_channel = self._tx_channel = None
            self._declared.clear()
        if confirm:
            if self._confirm_channel is None or not self._confirm_channel.is_open:
                self._confirm_channel = connection.channel()
                self._confirm_channel.confirm_delivery()
            return self._confirm_channel
        if self._tx_channel is None or not self._tx_channel.is_open:
            self._tx_channel = connection.channel()
            self._tx_channel.tx_select()
            self._tx_channel.add_on_return_callback(self._on_return)
        return self._tx_channel

    def _on_return(
        self,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        self._returned.append((method.routing_key, properties.message_id))

    def _declare(self, *, confirm: bool, queue: str) -> DeliveryFailed | None:
        """Declare `queue` once per connection; the broker's refusal is that queue's failure.

        A queue that exists with other arguments (PRECONDITION_FAILED) or that we may not use
        (ACCESS_REFUSED) closes the channel; that fails the rows for this queue, not the relay.
        """
        if queue in self._declared:
            return None
        try:
            amqp.declare_extractor_queue(self._channel(confirm=confirm), queue)
        except pika.exceptions.ChannelClosedByBroker as exc:
            return DeliveryFailed(f"declaring queue {queue}: {amqp.describe(exc)}")
        self._declared.add(queue)
        return None

    def _forget_connection(self) -> None:
        self._link.drop()
        self._confirm_channel = self._tx_channel = None
        self._declared.clear()


def from_settings(settings: Settings, timeout_s: float) -> ExtractorQueueSink:
    """The `via: amqp` sink of `sink_registry`."""
    client = f"switchboard-sink {settings.queue}"
    return ExtractorQueueSink(settings.rabbitmq_uri, client_name=client, timeout_s=timeout_s)
