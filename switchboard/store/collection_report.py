"""Text for operators: collection lines of `switchboard status` and `switchboard manifest ID`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import Connection, select

from .collection_tables import FIRED, OPEN
from .manifests import iter_members, load_manifest
from .progress_statements import collections, firings

BAR_WIDTH = 20


def progress_bar(count: int, expected: int | None, width: int = BAR_WIDTH) -> str:
    """`[#########-----------]`, or `[?]` when the expected total is unknown."""
    if not expected:
        return "[?]"
    filled = min(width, int(width * count / expected))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def collection_lines(connection: Connection, limit: int = 20) -> Iterator[str]:
    """Open collections (count, expected, percent, bar), then the newest firings."""
    c = collections
    open_rows = connection.execute(
        select(c).where(c.c.state == OPEN).order_by(c.c.rule, c.c.key).limit(limit)
    ).all()
    yield f"open collections ({len(open_rows)}{'+' if len(open_rows) == limit else ''}):"
    for row in open_rows:
        expected = row.expected
        percent = f"{100 * row.member_count / expected:5.1f}%" if expected else "    ?"
        shown = "?" if expected is None else str(expected)
        quiet = f"  quiet until {_time(row.quiet_deadline)}" if row.quiet_deadline else ""
        yield (
            f"  {row.rule}  {row.key}  gen {row.generation}  {row.member_count}/{shown}  "
            f"{percent} {progress_bar(row.member_count, expected)}{quiet}"
        )
    f = firings
    fired = connection.execute(
        select(f).order_by(f.c.fired_at.desc(), f.c.rule, f.c.key).limit(limit)
    ).all()
    yield f"fired collections (newest {len(fired)}):"
    for row in fired:
        yield (
            f"  {row.rule}  {row.key}  gen {row.generation}  {row.member_count} members  "
            f"{FIRED} {_time(row.fired_at)}  manifest {row.manifest_id}  job {row.job_id}"
        )


def write_manifest(connection: Connection, mid: str, out: TextIO, *, as_json: bool) -> bool:
    """Stream one manifest to `out`; False if there is no such manifest."""
    manifest = load_manifest(connection, mid)
    if manifest is None:
        return False
    head: dict[str, Any] = {
        "id": manifest.id,
        "rule": manifest.rule,
        "key": manifest.key,
        "generation": manifest.generation,
        "member_count": manifest.member_count,
        "created_at": manifest.created_at.isoformat(),
        "file_path": manifest.file_path,
    }
    if as_json:
        out.write(json.dumps(head)[:-1] + ', "members": [')
        for i, (member, data) in enumerate(iter_members(connection, mid)):
            item = json.dumps({"member": member, "data": data})
            out.write(("," if i else "") + "\n  " + item)
        out.write("\n]}\n")
        return True
    for name, value in head.items():
        out.write(f"{name}: {value}\n")
    out.write("members:\n")
    for member, data in iter_members(connection, mid):
        shown = "" if data is None else "  " + json.dumps(data, sort_keys=True)
        out.write(f"  {member}{shown}\n")
    return True


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"
