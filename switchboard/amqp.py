"""RabbitMQ plumbing shared by the source, sinks and heartbeat: connecting, declaring, errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from .errors import BrokerError, DeliveryFailed, MessageNotEncodable
from .secrets import redact_url, replace_secrets

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 60
DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S = 300.0
LEGACY_EXCHANGE = "clowder"
PRECONDITION_FAILED = 406  # AMQP reply code: a redeclaration with other arguments
DEFAULT_LEGACY_BINDING_KEYS = ("*.dataset.file.added",)

# Properties pika's BasicProperties accepts; anything else in a properties dict is ignored.
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)
# Dropped when a received message is published again: a foreign `user_id` makes the broker
# refuse the publish, and a per-message `expiration` would let a dead letter silently expire.
NOT_REPUBLISHED = frozenset({"user_id", "expiration"})

redact_uri = redact_url  # the name the broker code and its callers know


def _password(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        return urlsplit(uri).password
    except ValueError:
        return None


def describe(exc: BaseException) -> str:
    """A short `Type: message` for a pika exception (pika's own str is often empty)."""
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


@contextlib.contextmanager
def translated_errors(action: str, *, uri: str | None = None) -> Iterator[None]:
    """Re-raise pika failures inside the block as BrokerError, DeliveryFailed or
    MessageNotEncodable.

    A returned (unroutable) or nacked publish becomes DeliveryFailed; a value AMQP cannot
    encode (ShortStringTooLong: a name or property over 255 bytes) becomes MessageNotEncodable,
    a fault of that message, not of the connection (pika encodes a frame completely before it
    writes any of it); every other pika or socket failure becomes BrokerError. The original is
    kept as `__cause__`; the message names `action` and never contains the password of `uri`.
    """
    secrets = [p for p in (_password(uri),) if p]
    try:
        yield
    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
        kind = (
            "returned as unroutable"
            if isinstance(exc, pika.exceptions.UnroutableError)
            else "nacked"
        )
        raise DeliveryFailed(
            replace_secrets(f"{action}: message {kind} by the broker", secrets)
        ) from exc
    except pika.exceptions.ShortStringTooLong as exc:
        reason = f"{action}: a name or property is longer than AMQP's 255 bytes"
        raise MessageNotEncodable(replace_secrets(reason, secrets)) from exc
    except (pika.exceptions.AMQPError, OSError) as exc:
        where = f" ({redact_uri(uri)})" if uri else ""
        raise BrokerError(replace_secrets(f"{action}{where}: {describe(exc)}", secrets)) from exc


def connection_parameters(
    uri: str,
    *,
    heartbeat_s: int = DEFAULT_HEARTBEAT_S,
    blocked_connection_timeout_s: float = DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S,
    client_name: str = "switchboard",
) -> pika.URLParameters:
    """Parameters for `uri` with broker heartbeats and a blocked-connection timeout set.

    Values given in the URI's query string (`?heartbeat=30`) are overridden: the daemon's
    liveness depends on them.
    """
    try:
        params = pika.URLParameters(uri)
    except Exception as exc:  # pika raises ValueError/TypeError variants for bad URIs
        raise BrokerError(f"invalid RabbitMQ URI {redact_uri(uri)}: {type(exc).__name__}") from None
    params.heartbeat = heartbeat_s
    params.blocked_connection_timeout = blocked_connection_timeout_s
    params.client_properties = {"connection_name": client_name}
    return params


def connect(
    uri: str,
    *,
    heartbeat_s: int = DEFAULT_HEARTBEAT_S,
    blocked_connection_timeout_s: float = DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S,
    client_name: str = "switchboard",
) -> pika.BlockingConnection:
    """Open a blocking connection to `uri`; raises BrokerError (password never shown)."""
    params = connection_parameters(
        uri,
        heartbeat_s=heartbeat_s,
        blocked_connection_timeout_s=blocked_connection_timeout_s,
        client_name=client_name,
    )
    with translated_errors("connecting to RabbitMQ", uri=uri):
        return pika.BlockingConnection(params)


def close_quietly(connection: pika.BlockingConnection | None) -> None:
    """Close a connection that may already be dead; never raises."""
    if connection is None:
        return
    with contextlib.suppress(Exception):  # a dead connection has nothing left to close
        if connection.is_open:
            connection.close()


def properties_from_dict(
    properties: Mapping[str, Any], *, republish: bool = False
) -> pika.BasicProperties:
    """BasicProperties from a plain dict (unknown keys ignored, `None` values left unset).

    With `republish=True` the fields in NOT_REPUBLISHED are dropped (see there why).
    """
    values = {
        name: properties[name]
        for name in PROPERTY_NAMES
        if properties.get(name) is not None and not (republish and name in NOT_REPUBLISHED)
    }
    if "headers" in values:
        values["headers"] = dict(values["headers"])
    return pika.BasicProperties(**values)


def properties_to_dict(properties: pika.BasicProperties | None) -> dict[str, Any]:
    """The set fields of a BasicProperties as a plain dict."""
    if properties is None:
        return {}
    values: dict[str, Any] = {}
    for name in PROPERTY_NAMES:
        value = getattr(properties, name, None)
        if value is not None:
            values[name] = dict(value) if name == "headers" else value
    return values


# --- declarations ------------------------------------------------------------------------------


def declare_extractor_queue(channel: BlockingChannel, name: str) -> None:
    """Declare an extractor's queue exactly as pyclowder 3.x does: durable, no arguments.

    Any other declaration would fail with PRECONDITION_FAILED against the extractor's own.
    """
    channel.queue_declare(queue=name, durable=True)


def error_queue_name(queue: str) -> str:
    """pyclowder's dead-letter queue convention."""
    return f"error.{queue}"


def retry_queue_name(queue: str) -> str:
    return f"retry.{queue}"


def declare_retry_queue(connection: pika.BlockingConnection, queue: str) -> str:
    """Declare `retry.<queue>`: a message waits there for its own `expiration`, then returns.

    Expired messages are dead-lettered through the default exchange straight back to `queue`.
    The queue has no `x-message-ttl`: the delay travels on each message (`expiration_ms`), so
    changing SWITCHBOARD_CLOWDER_RETRY_DELAY_S never changes the declaration.

    A retry queue declared by an earlier Switchboard carries a queue-wide `x-message-ttl`, and
    redeclaring it fails with PRECONDITION_FAILED (406), which closes the channel. So this
    declares on a throwaway channel and, on 406, logs an error naming the queue and the fix
    (delete it: `rabbitmqctl delete_queue retry.<queue>`; the next connect declares it anew)
    and keeps using the old queue as it is. Nothing stops: RabbitMQ applies the lower of the
    queue's and the message's TTL, so delayed events still come back (after at most the old
    delay). Any other failure is raised, as pika raised it.
    """
    name = retry_queue_name(queue)
    channel = connection.channel()
    try:
        channel.queue_declare(
            queue=name,
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue},
        )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        log.error(
            "retry queue %s was declared by an earlier Switchboard with other arguments "
            "(a queue-wide x-message-ttl); using it as it is, so delays are capped by its old "
            "TTL. Delete it (rabbitmqctl delete_queue %s) to have it declared anew: %s",
            name,
            name,
            exc.reply_text,
            extra={"queue": name},
        )
        return name
    channel.close()
    return name


def expiration_ms(delay_s: float) -> str:
    """A per-message `expiration` property for `delay_s` seconds (AMQP wants milliseconds text)."""
    return str(max(0, round(delay_s * 1000)))


def declare_input_queues(channel: BlockingChannel, queue: str) -> None:
    """Declare our input queue and `error.<queue>` as pyclowder would, and `retry.<queue>`."""
    declare_extractor_queue(channel, queue)
    declare_extractor_queue(channel, error_queue_name(queue))
    declare_retry_queue(channel.connection, queue)


def bind_legacy_exchange(
    channel: BlockingChannel,
    queue: str,
    keys: Iterable[str] = DEFAULT_LEGACY_BINDING_KEYS,
    exchange: str = LEGACY_EXCHANGE,
) -> None:
    """Bind `queue` to Clowder's topic exchange with `keys`, declaring the exchange passively.

    The exchange is never declared with a type: Clowder v1 declares it `topic` and clowder2
    without one, and a mismatched declaration closes the channel. A missing exchange closes
    the channel with NOT_FOUND, so call this on a channel you can throw away.
    """
    channel.exchange_declare(exchange=exchange, passive=True)
    for key in keys:
        channel.queue_bind(queue=queue, exchange=exchange, routing_key=key)


class LazyConnection:
    """A connection for publishers: opened on first use, reopened when found dead.

    A publisher that is idle for longer than two broker heartbeats loses its connection
    (pika answers heartbeats only while one of its methods runs). `get()` first lets pika
    process pending frames and, if that shows the connection is gone, opens a new one, so
    the next publish does not fail just because the daemon was quiet. `generation` counts
    connections opened, so users can forget per-connection state (channels, declared queues).
    """

    def __init__(
        self,
        uri: str,
        *,
        heartbeat_s: int = DEFAULT_HEARTBEAT_S,
        client_name: str = "switchboard",
        blocked_connection_timeout_s: float = DEFAULT_BLOCKED_CONNECTION_TIMEOUT_S,
    ) -> None:
        self.uri = uri
        self.heartbeat_s = heartbeat_s
        self.client_name = client_name
        self.blocked_connection_timeout_s = blocked_connection_timeout_s
        self.generation = 0
        self._connection: pika.BlockingConnection | None = None

    def get(self) -> pika.BlockingConnection:
        """The open connection, after a liveness probe; raises BrokerError if none can be had."""
        if self._connection is not None:
            try:
                self._connection.process_data_events(time_limit=0)
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.info("reopening a dead RabbitMQ connection (%s)", describe(exc))
                self.drop()
        if self._connection is None or not self._connection.is_open:
            self._connection = connect(
                self.uri,
                heartbeat_s=self.heartbeat_s,
                blocked_connection_timeout_s=self.blocked_connection_timeout_s,
                client_name=self.client_name,
            )
            self.generation += 1
        return self._connection

    def keepalive(self) -> None:
        """Let pika answer heartbeats on an open connection; forget it if it died. Never raises
        and never connects: an idle publisher calls this from the thread that publishes."""
        if self._connection is None:
            return
        try:
            self._connection.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            log.info(
                "RabbitMQ connection of %s lost while idle (%s)", self.client_name, describe(exc)
            )
            self.drop()

    def drop(self) -> None:
        """Forget the connection (closing it if it is still open)."""
        close_quietly(self._connection)
        self._connection = None

    close = drop
