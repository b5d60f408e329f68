"""The archive's row for one event: its fields and redacted body as stored, and its outcome."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..model import DatasetView, Decision, Event, Submission
from ..rules.collect import Collected
from ..secrets import SECRET_NAMES, is_secret, scrub_text, without_secrets

PROCESSED, DEAD_LETTERED = "processed", "dead-lettered"
MAX_DEAD_BODY_CHARS = 65_536  # a refused body is kept for a look, not in full


def _plain(value: Any) -> Any:
    """`value` as JSON data (AMQP headers may hold bytes, dates or decimals)."""
    return json.loads(json.dumps(value, default=str))


def event_fields(event: Event, dataset_name: str | None) -> dict[str, Any]:
    """What the archive keeps of the parsed event (secrets removed), `properties` included."""
    file = event.file
    return {
        "kind": event.kind.value,
        "resource_id": event.resource_id,
        "dataset_id": event.dataset_id,
        "dataset_name": dataset_name,
        "file": None
        if file is None
        else {"id": file.id, "name": file.name, "mime_type": file.mime_type, "size": file.size},
        "host": event.host,
        "reply_to": event.reply_to,
        "correlation_id": event.correlation_id,
        "parameters": _plain(without_secrets(event.parameters)) if event.parameters else {},
        "properties": _plain(without_secrets(event.properties)) if event.properties else {},
    }


# A JSON key that is secret-named (`"secretKey":`); over-matches (inside strings) are harmless.
_SECRET_KEY = re.compile(
    rb'(?i)"(?:' + "|".join(sorted(SECRET_NAMES, key=len, reverse=True)).encode() + rb')"\s*:'
)


def body_text(body: Mapping[str, Any], raw: bytes = b"") -> str:
    """The body as compact JSON text, every secret-named key removed at any depth.

    The common case, Clowder's `secretKey` at the top and no other secret-named key anywhere
    in `raw`, is one regex scan and a shallow copy instead of a walk of the whole body."""
    if raw:
        top = sum(1 for k in body if is_secret(str(k)))
        if len(_SECRET_KEY.findall(raw)) == top:
            kept = {k: v for k, v in body.items() if not is_secret(str(k))} if top else body
            return json.dumps(kept, separators=(",", ":"), default=str)
    return json.dumps(without_secrets(body), separators=(",", ":"), default=str)


def dead_body_text(raw: bytes) -> str:
    """A refused body as text: JSON without its secrets when it parses, else scrubbed text."""
    text = raw[: MAX_DEAD_BODY_CHARS * 4].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return scrub_text(text[:MAX_DEAD_BODY_CHARS])
    return json.dumps(without_secrets(parsed), separators=(",", ":"), default=str)[
        :MAX_DEAD_BODY_CHARS
    ]


def submission_fields(s: Submission) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "job_id": s.job_id,
        "rule": s.rule,
        "extractor": s.extractor,
        "via": s.via,
        "resource_type": s.resource_type,
        "resource_id": s.resource_id,
    }
    if "manifest_id" in s.parameters:
        fields["manifest_id"] = s.parameters["manifest_id"]
    return fields


def outcome(
    version: str | None,
    decisions: Iterable[Decision],
    submissions: Sequence[Submission],
    repeated: Iterable[str],
    collects: Iterable[Collected],
    errors: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    """The outcome of one event: matched rules with the reasons that held (non-matching rules
    are not stored: `explain --event` recomputes them), what it queued, collections, errors."""
    return {
        "version": version,
        "matched": [{"rule": d.rule, "reasons": list(d.reasons)} for d in decisions if d.matched],
        "submissions": [submission_fields(s) for s in submissions],
        "repeated_job_ids": sorted(set(repeated)),
        "collections": [{"rule": c.rule, "key": c.key, "member": c.member} for c in collects],
        "errors": [{"rule": rule, "error": error} for rule, error in errors],
        "dead_letter": None,
    }


def archived_row(
    event: Event,
    view: DatasetView,
    arrived_at: datetime,
    version: str | None,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The `event_archive` row of one processed event."""
    return {
        "message_id": event.message_id,
        "arrived_at": arrived_at,
        "rule_version": version,
        "status": PROCESSED,
        "kind": event.kind.value,
        "dataset_id": event.dataset_id,
        "file_id": event.file.id if event.file is not None else None,
        "files_seen": len(view.files) if event.dataset_id else None,
        "routing_key": event.routing_key,
        "event": event_fields(event, view.name or event.dataset_name),
        "body": body_text(event.body, event.raw),
        "outcome": result,
    }


def restored_event(row: Mapping[str, Any]) -> Event:
    """The Event an archived row stands for, parsed again from its stored body (the daemon's
    parser, so rules see what they saw), with the dataset name it was enriched with."""
    from ..events import parse_event

    fields = row["event"]
    event = parse_event(
        row["body"].encode("utf-8"),
        fields.get("properties") or {},
        routing_key=row["routing_key"] or "",
        max_bytes=len(row["body"].encode("utf-8")) + 1,
    )
    if fields.get("dataset_name") and not event.dataset_name:
        event = replace(event, dataset_name=fields["dataset_name"])
    if event.message_id != row["message_id"]:  # a body whose id was its hash: keep the archived
        event = replace(event, message_id=row["message_id"])
    return event
