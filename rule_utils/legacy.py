"""The original rulechecker's rule_utils functions, with their names and answers, over progress.

The TERRA-REF rulechecker kept one PSQL table of (rule, extractor, key, file id, file path)
rows; rule modules read and wrote it through these three functions. Here each row is a member
of the collection `key` (member = file id, data = `{"file_path": ...}`), so legacy rules and
Switchboard's own collections share one store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .binding import current

FILE_PATH = "file_path"


def retrieveProgressFromDB(key: str) -> dict[str, Any]:
    """`{"ids": {file_id: file_path}}` for the key across every rule, or `{}` for an unknown key."""
    found = current().members(key)
    if not found:
        return {}
    return {"ids": {member: _path_of(data) for member, data in found.items()}}


def submitProgressToDB(
    rule_name: str,
    extractor: str,
    key: str,
    file_id: str | Iterable[str],
    file_path: str | None = None,
) -> bool:
    """Record `file_id` (and its path) under `key`; True if it was new.

    Called once per downstream extractor with the same file, as the original rules do; the file
    is counted once. A list of ids (2017 rule modules passed the whole list) adds each of them.
    """
    progress = current()
    ids = [file_id] if isinstance(file_id, str) else [str(i) for i in file_id]
    added = False
    for one in ids:
        data = {FILE_PATH: file_path} if file_path is not None else None
        added = progress.add_member(rule_name, key, one, data, extractor=extractor) or added
    return added


def retrieveQueryCountsFromDB(prefix: str) -> dict[str, Any]:
    """`{"total": n, "counts": {key: n}}` over every key starting with `prefix`.

    `total` is what the original's callers read (the plant-height rule sums its scans with it).
    The original's other fields are not documented anywhere public; `counts` is ours.
    """
    counts = current().counts_with_prefix(prefix)
    return {"total": sum(counts.values()), "counts": dict(sorted(counts.items()))}


def _path_of(data: Any) -> str | None:
    if isinstance(data, dict) or hasattr(data, "get"):
        value = data.get(FILE_PATH)
        return None if value is None else str(value)
    return None
