"""Dotted field paths that rules test and templates read, and where each value comes from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..model import DatasetView, Event, FileInfo
from ..secrets import REDACTED, is_secret


class _Absent:
    """The value of a field the event does not have (missing, null, or unknown)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = _Absent()

# A path segment: no dots, braces, spaces, format specs or indexing syntax.
SEGMENT = re.compile(r"[A-Za-z0-9_@$-]+")


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event-level condition looks at: the event and the dataset view it arrived in."""

    event: Event
    dataset: DatasetView | None


Getter = Callable[[Any], Any]


class FieldError(ValueError):
    """A field path that names nothing a rule can read."""


def _text(value: str | None) -> Any:
    # The model uses "" and None for "unknown"; rules see both as absent.
    return value if value else ABSENT


def _file(subject: Subject) -> FileInfo | None:
    return subject.event.file


def _dataset_id(s: Subject) -> Any:
    return _text(s.dataset.id if s.dataset is not None else None) or _text(s.event.dataset_id)


def _dataset_name(s: Subject) -> Any:
    return _text(s.dataset.name if s.dataset is not None else None) or _text(s.event.dataset_name)


def _file_size(f: FileInfo | None) -> Any:
    return ABSENT if f is None or f.size is None else f.size


EVENT_FIELDS: Final[Mapping[str, Getter]] = {
    "event.kind": lambda s: s.event.kind.value,
    "event.routing_key": lambda s: _text(s.event.routing_key),
    "event.host": lambda s: _text(s.event.host),
    "event.message_id": lambda s: _text(s.event.message_id),
    "file.id": lambda s: _text(f.id) if (f := _file(s)) is not None else ABSENT,
    "file.name": lambda s: _text(f.name) if (f := _file(s)) is not None else ABSENT,
    "file.mime_type": lambda s: _text(f.mime_type) if (f := _file(s)) is not None else ABSENT,
    "file.size": lambda s: _file_size(_file(s)),
    "dataset.id": _dataset_id,
    "dataset.name": _dataset_name,
}

FILE_FIELDS: Final[Mapping[str, Getter]] = {
    "id": lambda f: _text(f.id),
    "name": lambda f: _text(f.name),
    "mime_type": lambda f: _text(f.mime_type),
    "size": lambda f: _file_size(f),
}

RAW_NAMESPACES: Final = ("parameters", "body")


def walk(root: Any, parts: tuple[str, ...]) -> Any:
    """Follow `parts` through nested mappings (and lists, by decimal index); ABSENT if it breaks."""
    current = root
    for part in parts:
        if isinstance(current, Mapping):
            current = current.get(part, ABSENT)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return ABSENT
        if current is ABSENT or current is None:
            return ABSENT
    return current


def raw_getter(namespace: str, parts: tuple[str, ...]) -> Getter:
    """The getter of `parts` under `body` or `parameters` (the raw namespaces)."""
    if namespace == "body":
        return lambda s: walk(s.event.body, parts)
    return lambda s: walk(s.event.parameters, parts)


def event_field(path: str) -> Getter:
    """The getter for an event-level field path, or FieldError saying why the path is wrong."""
    if path in EVENT_FIELDS:
        return EVENT_FIELDS[path]
    head, _, rest = path.partition(".")
    if head in RAW_NAMESPACES and rest:
        parts = tuple(rest.split("."))
        if all(SEGMENT.fullmatch(p) for p in parts):
            return raw_getter(head, parts)
        raise FieldError(f"invalid field path {path!r}")
    if path == "dataset.files":
        raise FieldError("dataset.files can only be tested under 'require'")
    raise FieldError(f"unknown field {path!r} (known: {', '.join(known_event_fields())})")


def file_field(name: str) -> Getter:
    """The getter for a field of one inventory file (inside `require: ... where:`)."""
    if name in FILE_FIELDS:
        return FILE_FIELDS[name]
    raise FieldError(f"unknown file field {name!r} (known: {', '.join(FILE_FIELDS)})")


def known_event_fields() -> list[str]:
    return [*EVENT_FIELDS, "parameters.<path>", "body.<path>"]


def show(path: str, value: Any, limit: int = 60) -> str:
    """A short printable form of a field's value for reasons, with secrets redacted."""
    if value is ABSENT:
        return "absent"
    if is_secret(path):
        return REDACTED
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
