"""Readers of the fields of a Clowder message body (ids, file, size, parameters, properties):
each returns the value or raises MalformedEvent with a reason that never quotes a secret."""

from __future__ import annotations

import functools
import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import MalformedEvent
from .limits import MAX_ID_BYTES, MAX_NESTING, over_id_limit, utf8_length
from .model import EventKind, FileInfo
from .records import json_type

# Left out of the content hash behind a message id (not a redaction): the same event sent with
# another API key is the same event. Only `secretKey`, so existing message ids stay the same.
_SECRET_KEYS = frozenset({"secretKey"})
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_QUOTED_CHARS = 60


def is_file_key(routing_key: str) -> bool:
    """Whether a metadata.added routing key names a file (`clowder.metadata.added.file`)."""
    return routing_key.endswith(".file")


# --- fields ------------------------------------------------------------------------------------


def file_info(
    kind: EventKind, body: Mapping[str, Any], resource_id: str, size: int | None, key: str
) -> FileInfo | None:
    source = _object(body, "source")
    extra = _object(source, "extra", "source.") if source is not None else None
    source_name = optional_str(extra, "filename", "source.extra.") if extra is not None else None
    source_mime = optional_str(source, "mimeType", "source.") if source is not None else None
    name = source_name or optional_str(body, "filename") or ""
    if kind is EventKind.MANUAL_DATASET:
        if not source_name or source is None:
            return None
        id_ref = _object(source, "id", "source.")
        file_id = optional_id(id_ref, "id", "source.id.") if id_ref is not None else None
        if not file_id:
            return None
        return FileInfo(file_id, source_name, source_mime or _guess_mime(source_name), None)
    if kind is EventKind.METADATA_ADDED and not (is_file_key(key) or name):
        return None
    if not name and kind is not EventKind.METADATA_ADDED:
        raise MalformedEvent('missing file name: neither "source.extra.filename" nor "filename"')
    return FileInfo(resource_id, name, source_mime or _guess_mime(name), size)


def file_size(body: Mapping[str, Any]) -> int | None:
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
    raise MalformedEvent(f'"fileSize" must be a whole number of bytes, not {quote(value)}')


def message_id(body: Mapping[str, Any]) -> str:
    """msgid (v1), else jobid (v1), else job_id (v2), else a hash of the content."""
    for key in ("msgid", "jobid", "job_id"):
        value = optional_id(body, key)
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


def parameters_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """v1 file submissions send an object, v1 dataset submissions a JSON-encoded string."""
    value = body.get("parameters")
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        decoded = loads_json(value, what='"parameters" string')
        if isinstance(decoded, dict):
            return decoded
        raise MalformedEvent(f'"parameters" string holds {json_type(decoded)}, not an object')
    raise MalformedEvent(f'"parameters" must be an object, not {json_type(value)}')


def properties_of(properties: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if properties is None:
        return MappingProxyType({})
    if not isinstance(properties, Mapping):
        raise MalformedEvent(f"properties must be a mapping, not {type(properties).__name__}")
    return MappingProxyType(dict(properties))


def property_text(properties: Mapping[str, Any], name: str) -> str | None:
    value = properties.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MalformedEvent(f'property "{name}" must be a string, not {json_type(value)}')


def required_id(body: Mapping[str, Any], key: str) -> str:
    if key not in body:
        raise MalformedEvent(f'missing "{key}"')
    value = body[key]
    if not isinstance(value, str):
        raise MalformedEvent(f'"{key}" must be a string, not {_type_name(value)}')
    if not value:
        raise MalformedEvent(f'"{key}" must not be empty')
    return _bounded(value, key)


def optional_id(body: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    """An optional string that is an id: stored in an index, so at most MAX_ID_BYTES long."""
    value = optional_str(body, key, prefix)
    return None if value is None else _bounded(value, f"{prefix}{key}")


def _bounded(value: str, key: str) -> str:
    if over_id_limit(value):
        raise MalformedEvent(
            f'"{key}" is {utf8_length(value)} bytes long, over the {MAX_ID_BYTES}-byte limit'
            " for ids"
        )
    return value


def optional_str(body: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
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


def loads_json(text: str, *, what: str) -> Any:
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
    # each level opens with a bracket, so text with few brackets needs no walk (most bodies)
    opened = text.count("{") + text.count("[")
    if opened > MAX_NESTING and _nested_deeper_than(value, MAX_NESTING):
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


def quote(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[: _MAX_QUOTED_CHARS - 3] + "..."
    return text
