"""How many messages wait in `error.<queue>` and `retry.<queue>`, asked of RabbitMQ and cached.

Dead letters live only in RabbitMQ (with the reason in their `x-switchboard-error` header);
the database never sees them. Counting them is one passive `queue.declare` on a short-lived
connection of the web server's own (pika connections are not shared across threads), which
changes nothing on the broker: reading the messages themselves would need a get and a requeue,
which is not read-only, so the page shows counts and points at the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import amqp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Depths:
    """Messages in each queue; `problem` says why the counts are missing (None when known)."""

    error_queue: str
    retry_queue: str
    error: int | None
    retry: int | None
    problem: str | None = None


class QueueDepths:
    """Cached depths of our dead-letter and retry queues (at most one broker call per `ttl_s`)."""

    def __init__(
        self,
        rabbitmq_uri: str,
        queue: str,
        *,
        ttl_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = rabbitmq_uri
        self.error_queue = amqp.error_queue_name(queue)
        self.retry_queue = amqp.retry_queue_name(queue)
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Depths] | None = None

    def depths(self) -> Depths:
        with self._lock:
            if self._cached is not None and self.clock() - self._cached[0] < self.ttl_s:
                return self._cached[1]
            found = self._ask()
            self._cached = (self.clock(), found)
            return found

    def _ask(self) -> Depths:
        try:
            connection = amqp.connect(self.uri, client_name="switchboard web (queue depths)")
        except Exception as exc:  # the broker down is a fact to show, not an error of the page
            return Depths(self.error_queue, self.retry_queue, None, None, str(exc))
        try:
            return Depths(
                self.error_queue,
                self.retry_queue,
                self._count(connection, self.error_queue),
                self._count(connection, self.retry_queue),
            )
        finally:
            amqp.close_quietly(connection)

    @staticmethod
    def _count(connection: object, queue: str) -> int | None:
        """The queue's ready messages; None when it does not exist (a passive declare closes
        the channel then, so each queue gets a channel of its own)."""
        try:
            channel = connection.channel()  # type: ignore[attr-defined]  # pika is untyped
            frame = channel.queue_declare(queue, passive=True)
        except Exception as exc:  # 404 NOT_FOUND: the queue was never declared
            log.debug("no depth for %s: %s", queue, exc)
            return None
        try:
            channel.close()
        except Exception as exc:  # closing a channel we are done with is best effort
            log.debug("closing the channel for %s failed: %s", queue, exc)
        return int(frame.method.message_count)
