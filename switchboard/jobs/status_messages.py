"""Reading a status update from our status queue: pyclowder's body, checked and typed.

pyclowder 3.0.8 publishes `{file_id, extractor_id, job_id, status: "<STATUS>: <message>",
start, message_type, message}` with the incoming message's correlation id (protocol.md §3.6).
A body that is not a JSON object or carries no status word is malformed (dead-lettered).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import MalformedEvent
from ..ports import Delivery
from ..store.job_records import Update, update_key
from . import statuses as st


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """One update from an extractor, with what names its job.

    `at` is the update's own `start` time (None if it gave none: received time is used)."""

    correlation_id: str | None
    named_job_id: str | None
    status: str
    message: str
    at: datetime | None
    body: Mapping[str, Any]
    key: str

    def update(self, received_at: datetime) -> Update:
        """The timeline update this message records."""
        return Update(
            self.key, self.status, self.at or received_at, self.message, st.SOURCE_EXTRACTOR
        )


def parse_status_message(delivery: Delivery) -> StatusMessage:
    """The delivery as a StatusMessage; MalformedEvent saying what is wrong otherwise."""
    try:
        body = json.loads(delivery.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEvent(f"status update is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedEvent(f"status update is a JSON {type(body).__name__}, not an object")
    raw_status = body.get("status")
    if not isinstance(raw_status, str):
        raise MalformedEvent("status update has no `status` text")
    parsed = st.extractor_status(raw_status, body.get("message_type"))
    if parsed is None:
        raise MalformedEvent(f"status update's status {raw_status[:80]!r} names no known status")
    status, message = parsed
    if not message and isinstance(body.get("message"), str):
        message = body["message"]
    correlation = delivery.properties.get("correlation_id")
    named = body.get("job_id")
    return StatusMessage(
        correlation_id=correlation if isinstance(correlation, str) and correlation else None,
        named_job_id=named if isinstance(named, str) and named else None,
        status=status,
        message=message,
        at=_start_time(body.get("start")),
        body=body,
        key=update_key("extractor", correlation, hashlib.sha256(delivery.body).hexdigest()),
    )


def _start_time(value: object) -> datetime | None:
    """The update's `start` (ISO 8601; without an offset taken as UTC), None if absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"status update's start is not text: {value!r:.80}")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MalformedEvent(f"status update's start {value[:80]!r} is not ISO 8601") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
