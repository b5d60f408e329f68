"""Progress as pyclowder-shaped status updates (`StatusMessage.processing: ...`) to a queue."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .spec import StatusTarget

log = logging.getLogger(__name__)

# pyclowder renders `"%s" % StatusMessage.x` as `StatusMessage.x` (see protocol.md §3.6).
START, PROCESSING, DONE, ERROR = (
    "StatusMessage.start",
    "StatusMessage.processing",
    "StatusMessage.done",
    "StatusMessage.error",
)


def status_body(target: StatusTarget, message_type: str, message: str) -> dict[str, Any]:
    """The body pyclowder 3.0.8 sends to `reply_to` (Clowder v1 and v2 both read it)."""
    return {
        "file_id": target.file_id,
        "extractor_id": target.extractor_id,
        "job_id": target.job_id,
        "status": f"{message_type}: {message}",
        "start": datetime.now().astimezone().isoformat(timespec="milliseconds"),  # keeps order
        "message_type": message_type,
        "message": message,
    }


def progress_message(done: int, failed: int, total: int) -> str:
    return f"{done + failed}/{total} done, {failed} failed"


class StatusReporter:
    """Publishes status updates with pika: progress at most every `every_s` (the first batch's
    at once), the start and the final one always.

    A broker that is down costs progress updates, never the job: failures are logged and the
    next update reconnects.
    """

    def __init__(self, target: StatusTarget, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.clock = clock
        self._last_progress_s: float | None = None
        self._connection: Any = None
        self._channel: Any = None

    def start(self, total: int) -> None:
        self.publish(START, f"Started processing {total} members.")

    def progress(self, done: int, failed: int, total: int) -> None:
        """A `processing` update: the first at once, then at most every `every_s`."""
        now = self.clock()
        if self._last_progress_s is not None and now - self._last_progress_s < self.target.every_s:
            return
        self._last_progress_s = now
        self.publish(PROCESSING, progress_message(done, failed, total))

    def finish(self, ok: bool, done: int, failed: int, total: int) -> None:
        said = progress_message(done, failed, total)
        if ok:
            self.publish(DONE, f"Done processing: {said}.")
        else:
            self.publish(ERROR, f"Too many members failed: {said}.")
        self.close()

    def publish(self, message_type: str, message: str) -> None:
        import pika

        body = json.dumps(status_body(self.target, message_type, message))
        properties = pika.BasicProperties(
            delivery_mode=2, correlation_id=self.target.correlation_id
        )
        try:
            if self._channel is None:
                self._connection = pika.BlockingConnection(pika.URLParameters(self.target.url))
                self._channel = self._connection.channel()
            self._channel.basic_publish("", self.target.reply_to, body, properties)
        except Exception as exc:  # pika raises many kinds; progress must never fail the job
            log.warning("status update to %s not sent: %s", self.target.reply_to, exc)
            self.close()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to close
                connection.close()
