"""Recorded messages (fixtures, traffic files, test inputs) turned into what the broker delivers.

Tests, `switchboard replay` and `event_from_record` all read records through
`message_from_record`, so a record means the same everywhere:

- a record is `{"properties"?, "routing_key"?, "body"}`; anything else is a bare body;
- the routing key is the record's `routing_key`, else `properties.routing_key` (where older
  recordings keep it; it is not an AMQP property, so it is taken out of the properties);
- a body that is an object (or any JSON value) becomes UTF-8 JSON, a string its UTF-8 bytes,
  bytes stay as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import MalformedEvent


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """A message as the broker would deliver it: body bytes, AMQP properties, routing key."""

    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    routing_key: str = ""


def message_from_record(record: Any) -> RecordedMessage:
    """The message a record stands for; MalformedEvent names a record part of the wrong type."""
    if not isinstance(record, Mapping) or "body" not in record:
        return RecordedMessage(body_bytes(record))
    properties = record.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, Mapping):
        raise MalformedEvent(f'record "properties" is {json_type(properties)}, not an object')
    properties = dict(properties)
    in_properties = properties.pop("routing_key", None)
    routing_key = record.get("routing_key") or in_properties or ""
    if not isinstance(routing_key, str):
        raise MalformedEvent(f'record "routing_key" must be a string, not {json_type(routing_key)}')
    return RecordedMessage(body_bytes(record["body"]), properties, routing_key)


def body_bytes(body: Any) -> bytes:
    """Bytes as they are, a string as UTF-8, anything else as UTF-8 JSON.

    A string with lone surrogates keeps them (`surrogatepass`), so parsing it says the body is
    not UTF-8 instead of this failing.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"record body cannot be written as JSON: {exc}") from None
    except RecursionError:
        raise MalformedEvent("record body is nested too deeply to write as JSON") from None


def json_type(value: Any) -> str:
    """The JSON name of a value's type, with its article: 'a JSON array'."""
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, list | tuple):
        return "a JSON array"
    if isinstance(value, Mapping):
        return "a JSON object"
    return f"a {type(value).__name__}"
