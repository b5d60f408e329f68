"""Publishes outbox rows straight to extractor queues, the way Clowder does (protocol.md §4.3)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from .. import amqp
from ..errors import BrokerError, DeliveryFailed
from ..ports import OutboxRow


def encode_body(row: OutboxRow) -> bytes:
    """The row's body as UTF-8 JSON, as pyclowder expects it."""
    return json.dumps(row.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ExtractorQueueSink:
    """Send `via: amqp` rows to the queue named by the row's extractor (implements `ports.Sink`).

    Each target queue is declared exactly as pyclowder declares it (durable, no arguments)
    before the first publish, so a message never vanishes into a queue that does not exist
    yet. Publishes are `mandatory` and confirmed: a returned or nacked message raises
    DeliveryFailed; a lost connection raises BrokerError and is reopened on the next call.

    `send` confirms each message (one round trip each); `send_many` publishes a batch inside
    one AMQP transaction and commits once, which is several times faster for large batches.
    """

    def __init__(
        self,
        uri: str,
        *,
        heartbeat_s: int = amqp.DEFAULT_HEARTBEAT_S,
        client_name: str = "switchboard-sink",
    ) -> None:
        self.uri = uri
        self._link = amqp.LazyConnection(uri, heartbeat_s=heartbeat_s, client_name=client_name)
        self._generation = -1
        self._confirm_channel: BlockingChannel | None = None
        self._tx_channel: BlockingChannel | None = None
        self._declared: set[str] = set()
        self._returned: list[tuple[str, str | None]] = []

    def send(self, row: OutboxRow) -> None:
        """Publish one row and wait for the broker's confirm."""
        queue = row.submission.extractor
        try:
            with amqp.translated_errors(f"publishing to {queue}", uri=self.uri):
                refused = self._declare(confirm=True, queue=queue)
                if refused is not None:
                    raise refused
                channel = self._channel(confirm=True)
                channel.basic_publish(
                    "",
                    queue,
                    encode_body(row),
                    amqp.properties_from_dict(row.properties),
                    mandatory=True,
                )
        except BrokerError:
            self._forget_connection()
            raise

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]:
        """Publish `rows` in one transaction; each row paired with None or its DeliveryFailed.

        A message the broker returns as unroutable fails alone; a lost connection fails the
        whole batch with BrokerError (nothing in an uncommitted transaction was delivered).
        """
        if not rows:
            return []
        try:
            with amqp.translated_errors("publishing a batch of submissions", uri=self.uri):
                refused: dict[str, DeliveryFailed] = {}
                for queue in dict.fromkeys(row.submission.extractor for row in rows):
                    error = self._declare(confirm=False, queue=queue)
                    if error is not None:
                        refused[queue] = error
                channel = self._channel(confirm=False)
                self._returned.clear()
                for row in rows:
                    queue = row.submission.extractor
                    if queue in refused:
                        continue
                    channel.basic_publish(
                        "",
                        queue,
                        encode_body(row),
                        amqp.properties_from_dict(row.properties),
                        mandatory=True,
                    )
                channel.tx_commit()
                # basic.return frames precede commit-ok; this dispatches them to _on_return.
                self._link.get().process_data_events(time_limit=0)
        except BrokerError:
            self._forget_connection()
            raise
        returned = set(self._returned)
        results: list[tuple[OutboxRow, Exception | None]] = []
        for row in rows:
            key = (row.submission.extractor, row.properties.get("message_id"))
            if row.submission.extractor in refused:
                results.append((row, refused[row.submission.extractor]))
            elif key in returned:
                error = DeliveryFailed(
                    f"publishing to {row.submission.extractor}: message returned as unroutable"
                )
                results.append((row, error))
            else:
                results.append((row, None))
        return results

    def close(self) -> None:
        self._forget_connection()

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
