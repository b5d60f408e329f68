"""Operator tools on the broker: list and redrive dead letters, record live traffic from a tap.

Dead letters are the messages the daemon moved, intact, to `error.<queue>` with the header
`x-switchboard-error` (and the routing key they arrived with in
`x-switchboard-original-routing-key`, which intake reads back). Listing takes them without
acknowledging and then lets the broker put them back; redriving publishes each chosen one to
the input queue with its properties and headers (under a publisher confirm) and only then
acknowledges it in `error.<queue>`, so a crash in between leaves a copy in both places, never
none: the copy the daemon processes twice is absorbed by its dedup ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from . import amqp
from .amqp_delivery import ERROR_HEADER, ORIGINAL_ROUTING_KEY_HEADER
from .delays import DELAY_COUNT_HEADER

REDRIVEN_HEADER = "x-switchboard-redriven-by"
WAIT_S = 0.5  # how long an empty queue is waited on before a listing ends


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in `error.<queue>`, as an operator sees it."""

    id: str  # its message id, else a hash of its routing key and body
    reason: str
    routing_key: str
    properties: dict[str, Any]
    body: bytes

    def as_json(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.body)
        except ValueError:
            body = self.body.decode("utf-8", "replace")
        headers = self.properties.get("headers") or {}
        return {
            "id": self.id,
            "reason": self.reason,
            "routing_key": self.routing_key,
            "headers": {k: _plain(v) for k, v in headers.items()},
            "body": body,
        }


def _plain(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _dead_letter(props: pika.BasicProperties, routing_key: str, body: bytes) -> DeadLetter:
    properties = amqp.properties_to_dict(props)
    headers = properties.get("headers") or {}
    original = headers.get(ORIGINAL_ROUTING_KEY_HEADER)
    key = original if isinstance(original, str) else routing_key
    ident = properties.get("message_id")
    if not isinstance(ident, str) or not ident:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass") + b"\0" + body)
        ident = "sha256:" + digest.hexdigest()[:16]
    return DeadLetter(ident, str(_plain(headers.get(ERROR_HEADER, ""))), key, properties, body)


def _taken(channel: BlockingChannel, queue: str) -> Iterator[tuple[int, DeadLetter]]:
    """Every message now in `queue`, unacknowledged (closing the channel puts them back)."""
    channel.basic_qos(prefetch_count=0)
    for method, props, body in channel.consume(queue, inactivity_timeout=WAIT_S):
        if method is None:
            break
        yield method.delivery_tag, _dead_letter(props, method.routing_key, body)


def list_dead_letters(uri: str, queue: str, limit: int = 1000) -> list[DeadLetter]:
    """Up to `limit` dead letters of `queue` (its `error.` queue), oldest first; all stay."""
    connection = amqp.connect(uri, client_name=f"switchboard dead-letters {queue}")
    try:
        channel = connection.channel()
        found = []
        for _, letter in _taken(channel, amqp.error_queue_name(queue)):
            found.append(letter)
            if len(found) >= limit:
                break
        channel.close()  # unacknowledged: the broker puts every one back
        return found
    finally:
        amqp.close_quietly(connection)


def redrive(
    uri: str,
    queue: str,
    *,
    ids: Collection[str] | None,
    who: str,
    on_moved: Callable[[DeadLetter], None] = lambda _: None,
) -> list[DeadLetter]:
    """Move the dead letters whose id is in `ids` (all of them with None) back to `queue`.

    Each keeps its properties and headers (but for the delay count, so a message that waited
    too often for Clowder gets its full allowance again) plus `x-switchboard-redriven-by`.
    `on_moved` runs after each is in the input queue and before it leaves `error.<queue>`
    (the caller logs the action there). The others stay in `error.<queue>`.
    """
    connection = amqp.connect(uri, client_name=f"switchboard redrive {queue}")
    moved: list[DeadLetter] = []
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for tag, letter in _taken(channel, amqp.error_queue_name(queue)):
            if ids is not None and letter.id not in ids:
                continue
            properties = dict(letter.properties)
            headers = dict(properties.get("headers") or {})
            headers.pop(DELAY_COUNT_HEADER, None)
            headers[REDRIVEN_HEADER] = who
            headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, letter.routing_key)
            properties["headers"] = headers
            props = amqp.properties_from_dict(properties, republish=True)
            with amqp.translated_errors(f"redriving a message to {queue}", uri=uri):
                channel.basic_publish("", queue, letter.body, props, mandatory=True)
            on_moved(letter)
            channel.basic_ack(tag)
            moved.append(letter)
        channel.close()  # the ones not chosen go back
        return moved
    finally:
        amqp.close_quietly(connection)


def record_tap(
    uri: str,
    *,
    exchange: str,
    binding_keys: Collection[str],
    count: int,
    on_record: Callable[[dict[str, Any]], None],
    timeout_s: float | None = None,
) -> int:
    """Copy `count` live messages from a private tap queue bound to `exchange` with the same
    keys as the input queue; each as a traffic record (`traffic` format) to `on_record`.

    The tap queue is exclusive and auto-deleted, so the daemon's own queue loses nothing and
    nothing is left behind. Stops after `timeout_s` without a message, if given; the count.
    """
    connection = amqp.connect(uri, client_name="switchboard record")
    taken = 0
    try:
        channel = connection.channel()
        tap = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.exchange_declare(exchange=exchange, passive=True)
        for key in binding_keys:
            channel.queue_bind(queue=tap, exchange=exchange, routing_key=key)
        for method, props, body in channel.consume(
            tap, auto_ack=True, inactivity_timeout=timeout_s
        ):
            if method is None:
                break
            on_record(_record(props, method.routing_key, body))
            taken += 1
            if taken >= count:
                break
        channel.cancel()
        return taken
    finally:
        amqp.close_quietly(connection)


def _record(props: pika.BasicProperties, routing_key: str, body: bytes) -> dict[str, Any]:
    """A traffic record of one message; a body that is not a JSON object is kept as text."""
    properties = {k: _plain(v) for k, v in amqp.properties_to_dict(props).items() if k != "headers"}
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    record: dict[str, Any] = {"properties": properties, "routing_key": routing_key}
    if isinstance(parsed, dict):
        record["body"] = parsed
    else:
        record["body"] = {}
        record["raw"] = body.decode("utf-8", "replace")
    return record
