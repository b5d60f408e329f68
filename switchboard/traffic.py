"""Read and write recorded broker traffic as JSON Lines, one message record per line.

A record is `{"properties": {...}, "routing_key": "...", "body": {...}}` (extra top-level keys,
such as the demo's `dataset_name`, are kept); `records.message_from_record` says how one reads
and `events.event_from_record` turns one into an Event.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from .errors import MalformedEvent

PathLike = str | os.PathLike[str]


def read_records(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each non-blank line; a bad line raises at `path:line`."""
    name = os.fspath(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (the `with` below closes it)
    except OSError as exc:
        raise MalformedEvent(f"{name}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            yield number, _record(line, f"{name}:{number}")


def write_records(destination: PathLike | TextIO, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records one per line to a path (replaced atomically) or an open text stream.

    Returns how many records were written. `-` means standard output.
    """
    if isinstance(destination, str) and destination == "-":
        destination = sys.stdout
    if not isinstance(destination, str | os.PathLike):
        return _write_lines(destination, records)
    target = os.fspath(destination)
    temporary = f"{target}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            count = _write_lines(handle, records)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return count


def dumps_record(record: Mapping[str, Any]) -> str:
    """One record as one line of JSON (no trailing newline), keys in their given order."""
    return json.dumps(record, ensure_ascii=False)


def _write_lines(stream: TextIO, records: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    for record in records:
        stream.write(dumps_record(record) + "\n")
        count += 1
    return count


def _record(line: bytes, where: str) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"{where}: not UTF-8 (byte at column {exc.start + 1})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"{where}: not valid JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedEvent(f"{where}: not valid JSON: {type(exc).__name__}") from None
    if not isinstance(record, dict):
        raise MalformedEvent(f"{where}: a record must be a JSON object")
    if not isinstance(record.get("body"), dict):
        raise MalformedEvent(f'{where}: a record needs a "body" object')
    if not isinstance(record.get("properties", {}), dict):
        raise MalformedEvent(f'{where}: "properties" must be an object')
    if not isinstance(record.get("routing_key", ""), str):
        raise MalformedEvent(f'{where}: "routing_key" must be a string')
    return record
