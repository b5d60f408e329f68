"""Parse a Clowder message (any body shape Clowder v1, legacy v1 or v2 sends) into one Event.

Anything that is not an event we can act on raises `MalformedEvent` with a reason precise
enough to put in a dead-letter header. Reasons never quote `secretKey` or the raw body. Ids
longer than `limits.MAX_ID_BYTES` and bodies nested deeper than `limits.MAX_NESTING` are
refused here, so nothing downstream (the content hash, the database's indexes) meets them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import MalformedEvent
from .event_fields import (
    file_info,
    file_size,
    is_file_key,
    loads_json,
    message_id,
    optional_id,
    optional_str,
    parameters_of,
    properties_of,
    property_text,
    quote,
    required_id,
)
from .model import Event, EventKind
from .records import json_type, message_from_record

DEFAULT_MAX_BYTES = 1_048_576


def parse_event(
    body: bytes,
    properties: Mapping[str, Any] | None = None,
    *,
    routing_key: str = "",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Event:
    """Normalise one message body (bytes as received) into an Event, or raise MalformedEvent.

    `routing_key` is the AMQP routing key; the body's own `routing_key` wins when present
    (Clowder v1 publishes to the queue name and carries the event type in the body).
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise MalformedEvent(f"body must be bytes, not {type(body).__name__}")
    raw = bytes(body)
    if len(raw) > max_bytes:
        raise MalformedEvent(f"body is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(
            f"body is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    parsed = loads_json(text, what="body")
    if not isinstance(parsed, dict):
        raise MalformedEvent(f"body is {json_type(parsed)}, not an object")
    props = properties_of(properties)
    if not isinstance(routing_key, str):
        raise MalformedEvent(f"AMQP routing key must be a string, not {json_type(routing_key)}")
    return _event_from_body(parsed, raw, props, routing_key)


def event_from_record(record: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Parse a recorded message: `{"properties", "routing_key"?, "body"}` or a bare body
    (`records.message_from_record` says how a record reads).

    `raw` is the body re-serialised as UTF-8 JSON (the original bytes were not recorded).
    """
    message = message_from_record(record)
    return parse_event(
        message.body, message.properties, routing_key=message.routing_key, max_bytes=max_bytes
    )


def event_from_json(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Parse bytes holding either a raw message body or a fixture-style `{properties, body}` record.

    A JSON object whose `body` is an object or a string is read as a record; anything else is
    parsed as a body, so MalformedEvent explains exactly what is wrong with it.
    """
    if len(raw) > max_bytes:
        raise MalformedEvent(f"input is over the {max_bytes}-byte limit")
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        decoded = None  # let parse_event explain exactly what is wrong
    if isinstance(decoded, dict) and isinstance(decoded.get("body"), dict | str):
        return event_from_record(decoded, max_bytes=max_bytes)
    return parse_event(raw, max_bytes=max_bytes)


def load_event_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Read one event from a JSON file holding a raw body or a fixture-style record."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise MalformedEvent(f"{os.fspath(path)}: cannot read: {exc.strerror}") from None
    try:
        return event_from_json(raw, max_bytes=max_bytes)
    except MalformedEvent as exc:
        raise MalformedEvent(f"{os.fspath(path)}: {exc.reason}") from None


# --- body shapes -------------------------------------------------------------------------------


def _event_from_body(
    body: dict[str, Any], raw: bytes, properties: Mapping[str, Any], amqp_key: str
) -> Event:
    _refuse_non_events(body)
    body_key = optional_str(body, "routing_key")
    effective_key = body_key if body_key is not None else amqp_key
    kind = _kind(body, body_key, amqp_key)
    resource_id = required_id(body, "id")
    dataset_id = optional_id(body, "datasetId") or None
    size = file_size(body)
    if kind is EventKind.FILE_ADDED and dataset_id is None:
        raise MalformedEvent('missing "datasetId" (a dataset.file.added event names its dataset)')
    if kind is EventKind.MANUAL_DATASET:
        dataset_id = resource_id  # v1 sends id == datasetId; v2 dataset jobs are keyed by id
    elif kind is EventKind.METADATA_ADDED and not is_file_key(effective_key):
        dataset_id = dataset_id or resource_id
    return Event(
        kind=kind,
        message_id=message_id(body),
        resource_id=resource_id,
        dataset_id=dataset_id,
        file=file_info(kind, body, resource_id, size, effective_key),
        dataset_name=optional_str(body, "datasetname") or optional_str(body, "datasetName") or None,
        host=optional_str(body, "host") or "",
        routing_key=effective_key,
        reply_to=property_text(properties, "reply_to"),
        correlation_id=property_text(properties, "correlation_id"),
        parameters=MappingProxyType(parameters_of(body)),
        body=MappingProxyType(body),
        properties=properties,
        raw=raw,
    )


def _refuse_non_events(body: Mapping[str, Any]) -> None:
    """pyclowder heartbeats and status updates travel on the same broker; say so plainly."""
    if "extractor_info" in body:
        raise MalformedEvent("not an event: this is a pyclowder heartbeat (has extractor_info)")
    if "extractor_id" in body and ("status" in body or "message_type" in body):
        raise MalformedEvent("not an event: this is an extractor status update (has extractor_id)")


def _kind(body: Mapping[str, Any], body_key: str | None, amqp_key: str) -> EventKind:
    """Body routing_key first, then v2 resource_type, then the AMQP key, then the legacy guess."""
    if body.get("action") == "manual-submission":
        return _manual_kind(body)
    if body_key is not None:
        kind = _kind_from_routing_key(body_key, body)
        if kind is not None:
            return kind
    if "resource_type" in body:
        return _v2_kind(body)
    kind = _kind_from_routing_key(amqp_key, body)
    if kind is not None:
        return kind
    if body_key is None and _looks_like_legacy_file_added(body):
        # Pre-1.5 Clowder sent {id, datasetId, filename, ...} with the event type only in the
        # AMQP routing key, which a recording may have lost. A file id that differs from its
        # dataset id is a file added to that dataset, so we read it as dataset.file.added.
        return EventKind.FILE_ADDED
    if body_key is not None:
        raise MalformedEvent(f"routing_key {quote(body_key)} is not a Clowder event we handle")
    raise MalformedEvent(
        "cannot tell what kind of event this is: no routing_key or resource_type in the body"
        f" and AMQP routing key {quote(amqp_key)} is not a Clowder event"
    )


def _kind_from_routing_key(key: str, body: Mapping[str, Any]) -> EventKind | None:
    parts = key.split(".")
    if len(parts) >= 3 and parts[-3:] in (
        ["dataset", "file", "added"],
        ["dataset", "files", "added"],
    ):
        return EventKind.FILE_ADDED
    if len(parts) >= 3 and parts[1] == "file" and all(parts[2:]):
        return EventKind.FILE_CREATED
    if len(parts) >= 3 and parts[1:3] == ["metadata", "added"]:
        return EventKind.METADATA_ADDED
    if len(parts) >= 2 and parts[0] == "extractors" and all(parts[1:]):
        return _manual_kind(body)
    return None


def _manual_kind(body: Mapping[str, Any]) -> EventKind:
    same = required_id(body, "id") == optional_str(body, "datasetId")
    return EventKind.MANUAL_DATASET if same else EventKind.MANUAL_FILE


def _v2_kind(body: Mapping[str, Any]) -> EventKind:
    """Clowder v2 feeds send file jobs when a file is added; dataset jobs are submissions."""
    resource_type = body["resource_type"]
    if resource_type == "file":
        return EventKind.FILE_ADDED
    if resource_type == "dataset":
        return EventKind.MANUAL_DATASET
    raise MalformedEvent(f'"resource_type" must be "file" or "dataset", not {quote(resource_type)}')


def _looks_like_legacy_file_added(body: Mapping[str, Any]) -> bool:
    names = ("filename", "id", "datasetId")
    if not all(isinstance(body.get(n), str) and body[n] for n in names):
        return False
    return bool(body["id"] != body["datasetId"])
