"""Parse a Clowder message (any body shape Clowder v1, legacy v1 or v2 sends) into one Event.

Anything that is not an event we can act on raises `MalformedEvent` with a reason precise
enough to put in a dead-letter header. Reasons never quote `secretKey` or the raw body. Ids
longer than `limits.MAX_ID_BYTES` and bodies nested deeper than `limits.MAX_NESTING` are
refused here, so nothing downstream (the content hash, the database's indexes) meets them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mimetypes
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import MalformedEvent
from .limits import MAX_ID_BYTES, MAX_NESTING, over_id_limit, utf8_length
from .model import Event, EventKind, FileInfo
from .records import json_type, message_from_record

DEFAULT_MAX_BYTES = 1_048_576

# Left out of the content hash behind a message id (not a redaction): the same event sent with
# another API key is the same event. Only `secretKey`, so existing message ids stay the same.
_SECRET_KEYS = frozenset({"secretKey"})
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_QUOTED_CHARS = 60


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
    parsed = _loads(text, what="body")
    if not isinstance(parsed, dict):
        raise MalformedEvent(f"body is {json_type(parsed)}, not an object")
    props = _properties(properties)
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
    body_key = _optional_str(body, "routing_key")
    effective_key = body_key if body_key is not None else amqp_key
    kind = _kind(body, body_key, amqp_key)
    resource_id = _required_id(body, "id")
    dataset_id = _optional_id(body, "datasetId") or None
    size = _size(body)
    if kind is EventKind.FILE_ADDED and dataset_id is None:
        raise MalformedEvent('missing "datasetId" (a dataset.file.added event names its dataset)')
    if kind is EventKind.MANUAL_DATASET:
        dataset_id = resource_id  # v1 sends id == datasetId; v2 dataset jobs are keyed by id
    elif kind is EventKind.METADATA_ADDED and not _is_file(effective_key):
        dataset_id = dataset_id or resource_id
    return Event(
        kind=kind,
        message_id=_message_id(body),
        resource_id=resource_id,
        dataset_id=dataset_id,
        file=_file(kind, body, resource_id, size, effective_key),
        dataset_name=_optional_str(body, "datasetname")
        or _optional_str(body, "datasetName")
        or None,
        host=_optional_str(body, "host") or "",
        routing_key=effective_key,
        reply_to=_property(properties, "reply_to"),
        correlation_id=_property(properties, "correlation_id"),
        parameters=MappingProxyType(_parameters(body)),
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
        raise MalformedEvent(f"routing_key {_quote(body_key)} is not a Clowder event we handle")
    raise MalformedEvent(
        "cannot tell what kind of event this is: no routing_key or resource_type in the body"
        f" and AMQP routing key {_quote(amqp_key)} is not a Clowder event"
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
    same = _required_id(body, "id") == _optional_str(body, "datasetId")
    return EventKind.MANUAL_DATASET if same else EventKind.MANUAL_FILE


def _v2_kind(body: Mapping[str, Any]) -> EventKind:
    """Clowder v2 feeds send file jobs when a file is added; dataset jobs are submissions."""
    resource_type = body["resource_type"]
    if resource_type == "file":
        return EventKind.FILE_ADDED
    if resource_type == "dataset":
        return EventKind.MANUAL_DATASET
    raise MalformedEvent(
        f'"resource_type" must be "file" or "dataset", not {_quote(resource_type)}'
    )


def _looks_like_legacy_file_added(body: Mapping[str, Any]) -> bool:
    names = ("filename", "id", "datasetId")
    if not all(isinstance(body.get(n), str) and body[n] for n in names):
        return False
    return bool(body["id"] != body["datasetId"])


def _is_file(routing_key: str) -> bool:
    """Whether a metadata.added routing key names a file (`clowder.metadata.added.file`)."""
    return routing_key.endswith(".file")


# --- fields ------------------------------------------------------------------------------------


def _file(
    kind: EventKind, body: Mapping[str, Any], resource_id: str, size: int | None, key: str
) -> FileInfo | None:
    source = _object(body, "source")
    extra = _object(source, "extra", "source.") if source is not None else None
    source_name = _optional_str(extra, "filename", "source.extra.") if extra is not None else None
    source_mime = _optional_str(source, "mimeType", "source.") if source is not None else None
    name = source_name or _optional_str(body, "filename") or ""
    if kind is EventKind.MANUAL_DATASET:
        if not source_name or source is None:
            return None
        id_ref = _object(source, "id", "source.")
        file_id = _optional_id(id_ref, "id", "source.id.") if id_ref is not None else None
        if not file_id:
            return None
        return FileInfo(file_id, source_name, source_mime or _guess_mime(source_name), None)
    if kind is EventKind.METADATA_ADDED and not (_is_file(key) or name):
        return None
    if not name and kind is not EventKind.METADATA_ADDED:
        raise MalformedEvent('missing file name: neither "source.extra.filename" nor "filename"')
    return FileInfo(resource_id, name, source_mime or _guess_mime(name), size)


def _size(body: Mapping[str, Any]) -> int | None:
    value = body.get("fileSize")
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedEvent('"fileSize" must be a whole number, not a boolean')
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0 and value < 2**63:
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    raise MalformedEvent(f'"fileSize" must be a whole number of bytes, not {_quote(value)}')


def _message_id(body: Mapping[str, Any]) -> str:
    """msgid (v1), else jobid (v1), else job_id (v2), else a hash of the content."""
    for key in ("msgid", "jobid", "job_id"):
        value = _optional_id(body, key)
        if value:
            return value
    canonical = {k: v for k, v in body.items() if k not in _SECRET_KEYS}
    try:
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (RecursionError, ValueError, TypeError) as exc:  # parse-time limits make this rare
        raise MalformedEvent(
            f"cannot hash the body for a message id: {type(exc).__name__}"
        ) from None
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def _parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """v1 file submissions send an object, v1 dataset submissions a JSON-encoded string."""
    value = body.get("parameters")
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        decoded = _loads(value, what='"parameters" string')
        if isinstance(decoded, dict):
            return decoded
        raise MalformedEvent(f'"parameters" string holds {json_type(decoded)}, not an object')
    raise MalformedEvent(f'"parameters" must be an object, not {json_type(value)}')


def _properties(properties: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if properties is None:
        return MappingProxyType({})
    if not isinstance(properties, Mapping):
        raise MalformedEvent(f"properties must be a mapping, not {type(properties).__name__}")
    return MappingProxyType(dict(properties))


def _property(properties: Mapping[str, Any], name: str) -> str | None:
    value = properties.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MalformedEvent(f'property "{name}" must be a string, not {json_type(value)}')


def _required_id(body: Mapping[str, Any], key: str) -> str:
    if key not in body:
        raise MalformedEvent(f'missing "{key}"')
    value = body[key]
    if not isinstance(value, str):
        raise MalformedEvent(f'"{key}" must be a string, not {_type_name(value)}')
    if not value:
        raise MalformedEvent(f'"{key}" must not be empty')
    return _bounded(value, key)


def _optional_id(body: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    """An optional string that is an id: stored in an index, so at most MAX_ID_BYTES long."""
    value = _optional_str(body, key, prefix)
    return None if value is None else _bounded(value, f"{prefix}{key}")


def _bounded(value: str, key: str) -> str:
    if over_id_limit(value):
        raise MalformedEvent(
            f'"{key}" is {utf8_length(value)} bytes long, over the {MAX_ID_BYTES}-byte limit'
            " for ids"
        )
    return value


def _optional_str(body: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedEvent(f'"{prefix}{key}" must be a string, not {_type_name(value)}')


def _object(body: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any] | None:
    value = body.get(key)
    if value is None or isinstance(value, Mapping):
        return value
    raise MalformedEvent(f'"{prefix}{key}" must be an object, not {_type_name(value)}')


@functools.cache
def _mime_db() -> mimetypes.MimeTypes:
    """Python's built-in table only, so guesses do not depend on the host's /etc/mime.types."""
    return mimetypes.MimeTypes()


def _guess_mime(name: str) -> str:
    if not name:
        return ""
    return _mime_db().guess_type(name, strict=False)[0] or ""


# --- JSON helpers ------------------------------------------------------------------------------


def _loads(text: str, *, what: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedEvent(f"{what} is nested too deeply to parse") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python will convert
        raise MalformedEvent(f"{what} is not valid JSON: {exc}") from None
    if _nested_deeper_than(value, MAX_NESTING):
        raise MalformedEvent(f"{what} is nested more than {MAX_NESTING} levels deep")
    return value


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` deep (no recursion, so a
    body that json.loads could just parse cannot exhaust the stack here either)."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, level = pending.pop()
        if level > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return False


def _type_name(value: Any) -> str:
    """Python-style short type names for field errors: '"id" must be a string, not int'."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _quote(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[: _MAX_QUOTED_CHARS - 3] + "..."
    return text
