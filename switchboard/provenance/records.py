"""The archive's row for one event: its fields and redacted body as stored, and its outcome."""

from __future__ import annotations

import contextlib
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
    """What the archive keeps of the parsed event beside its columns (kind, dataset and file
    ids) and its body (from which the rest parses again): the dataset name it was enriched
    with, the file as parsed, and the AMQP properties (secrets removed)."""
    file = event.file
    fields: dict[str, Any] = {"dataset_name": dataset_name}
    if file is not None:
        fields["file"] = {"name": file.name, "mime_type": file.mime_type, "size": file.size}
    if event.properties:
        fields["properties"] = _plain_properties(event.properties)
    return fields


# Every secret name ends with one of these: a search for each finds every candidate key.
_TAILS = tuple({f'{name[-3:]}"'.encode() for name in SECRET_NAMES})
_STRING_VALUE = re.compile(rb'\s*:\s*"(?:[^"\\]|\\.)*"')  # `: "..."` right after a key


def _secret_keys(lowered: bytes) -> list[int] | None:
    """Where each secret-named quoted text starts (in the lower-cased body); None for a
    dotted secret name (`"a.token"`), which the cut does not handle."""
    found = []
    for tail in _TAILS:
        end = lowered.find(tail)
        while end >= 0:
            start = lowered.rfind(b'"', 0, end)
            name = lowered[start + 1 : end + len(tail) - 1]
            if name in _SECRET_BYTES:
                found.append(start)
            elif name.rsplit(b".", 1)[-1] in _SECRET_BYTES:
                return None
            end = lowered.find(tail, end + 1)
    return sorted(found)


_SECRET_BYTES = frozenset(name.encode() for name in SECRET_NAMES)


def _cut_string_secrets(raw: bytes) -> bytes | None:
    """`raw` with each `"secret-name": "string"` pair (and one comma beside it) cut out; None
    when a secret-named key is dotted, holds something else than a string, or the text uses
    `\\u` escapes (then the caller walks the parsed body instead)."""
    if b"\\u" in raw:
        return None
    starts = _secret_keys(raw.lower())
    if starts is None:
        return None
    if not starts:
        return raw
    pieces, last = [], 0
    for at in starts:
        key_end = raw.index(b'"', at + 1) + 1
        value = _STRING_VALUE.match(raw, key_end)
        if value is None or at < last:  # not a string (or a name used as a value)
            return None
        start, end = at, value.end()
        before = raw[last:start].rstrip()
        if before.endswith(b","):
            start = last + len(before) - 1
        else:
            after = raw[end:].lstrip()
            if after.startswith(b","):
                end = len(raw) - len(after) + 1
        pieces.append(raw[last:start])
        last = end
    pieces.append(raw[last:])
    return b"".join(pieces)


def body_text(body: Mapping[str, Any], raw: bytes = b"") -> str:
    """The body as received, with every secret-named key removed (at any depth).

    The common case, secret-named keys whose values are strings (Clowder's `secretKey`), cuts
    each pair out of the received text: a few substring searches instead of a walk and a
    re-encoding of the whole body. Anything else (a secret holding an object or a number, a
    dotted key) is re-encoded from `body` without its secrets."""
    if raw:
        cut = _cut_string_secrets(raw)
        if cut is not None:
            with contextlib.suppress(UnicodeDecodeError):
                return cut.decode("utf-8")
    return json.dumps(without_secrets(body), separators=(",", ":"), default=str)


_PLAIN = (str, int, float, bool, type(None))


def _plain_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """AMQP properties as JSON data without secrets (headers may hold bytes or dates)."""
    if all(isinstance(v, _PLAIN) for v in properties.values()):
        return {k: v for k, v in properties.items() if not is_secret(str(k))}
    return dict(_plain(without_secrets(properties)))


def dead_body_text(raw: bytes) -> str:
    """A refused body as text: JSON without its secrets when it parses, else scrubbed text
    (also for bodies nested too deep to walk, which is often why they were refused)."""
    text = raw[: MAX_DEAD_BODY_CHARS * 4].decode("utf-8", "replace")
    try:
        kept = json.dumps(without_secrets(json.loads(text)), separators=(",", ":"), default=str)
    except (ValueError, RecursionError):
        return scrub_text(text[:MAX_DEAD_BODY_CHARS])
    return kept[:MAX_DEAD_BODY_CHARS]


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
    are not stored: `explain --event` recomputes them), what it queued, collections, errors;
    empty parts are left out (most events match nothing)."""
    found: dict[str, Any] = {"version": version}
    matched = [{"rule": d.rule, "reasons": list(d.reasons)} for d in decisions if d.matched]
    if matched:
        found["matched"] = matched
    if submissions:
        found["submissions"] = [submission_fields(s) for s in submissions]
    repeats = sorted(set(repeated))
    if repeats:
        found["repeated_job_ids"] = repeats
    members = [{"rule": c.rule, "key": c.key, "member": c.member} for c in collects]
    if members:
        found["collections"] = members
    failures = [{"rule": rule, "error": error} for rule, error in errors]
    if failures:
        found["errors"] = failures
    return found


def archived_row(
    event: Event,
    view: DatasetView,
    arrived_at: datetime,
    version: str | None,
    result: dict[str, Any],
    body: str | None = None,
) -> dict[str, Any]:
    """The `event_archive` row of one processed event (`body`: its `body_text`, if known)."""
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
        "body": body_text(event.body, event.raw) if body is None else body,
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
