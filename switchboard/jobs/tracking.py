"""Point extractor messages' replies at our status queue, keeping where they went before.

An extractor (pyclowder) publishes its status updates to the incoming message's `reply_to`
with its `correlation_id`. For `via: amqp` submissions both are replaced: `reply_to` by our
status queue and `correlation_id` by our job id (so each update maps back to its job); the
originals travel in the outbox row's properties under two headers, from which the job keeps
them, so the relay can forward each update to where it would have gone (see `forwarding`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model import Event, Submission

ORIGINAL_REPLY_TO_HEADER = "x-switchboard-reply-to"
ORIGINAL_CORRELATION_HEADER = "x-switchboard-correlation-id"
TRACKED_VIAS = frozenset({"amqp"})  # vias whose messages reach an extractor directly

MessageBuilder = Callable[[Event, Submission], tuple[dict[str, Any], dict[str, Any]]]


def with_status_queue(build: MessageBuilder, status_queue: str) -> MessageBuilder:
    """`build`, with the replies of tracked vias' messages sent to `status_queue`."""

    def tracked(event: Event, submission: Submission) -> tuple[dict[str, Any], dict[str, Any]]:
        body, properties = build(event, submission)
        if submission.via in TRACKED_VIAS:
            properties = redirected(properties, status_queue, submission.job_id)
        return body, properties

    return tracked


def redirected(properties: Mapping[str, Any], status_queue: str, job_id: str) -> dict[str, Any]:
    """`properties` with reply_to = `status_queue`, correlation_id = `job_id`, and the
    original two in headers ("" for one the message did not have)."""
    changed = dict(properties)
    headers = dict(changed.get("headers") or {})
    for key, header in (
        ("reply_to", ORIGINAL_REPLY_TO_HEADER),
        ("correlation_id", ORIGINAL_CORRELATION_HEADER),
    ):
        headers[header] = changed.get(key) or ""
    changed["headers"] = headers
    changed["reply_to"] = status_queue
    changed["correlation_id"] = job_id
    return changed


def original_reply(properties: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(reply_to, correlation_id) the message had before it was redirected (or has, if not)."""
    headers = properties.get("headers") or {}
    if ORIGINAL_REPLY_TO_HEADER in headers or ORIGINAL_CORRELATION_HEADER in headers:
        return _text(headers.get(ORIGINAL_REPLY_TO_HEADER)), _text(
            headers.get(ORIGINAL_CORRELATION_HEADER)
        )
    return _text(properties.get("reply_to")), _text(properties.get("correlation_id"))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
