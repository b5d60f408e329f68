"""Manifests in the database: a firing's frozen, sorted member list, and writing its JSON file.

Members are streamed, never all held in memory; the file is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, literal, select
from sqlalchemy.orm import Session

from ..collections.manifests import manifest_id
from ..collections.state import Manifest
from .collection_tables import ManifestMember, ManifestRow
from .progress_statements import members_table
from .statements import upsert

manifests = cast(Table, ManifestRow.__table__)
manifest_members = cast(Table, ManifestMember.__table__)
STREAM_ROWS = 2000


def record_manifest(
    bind: Session | Connection,
    rule: str,
    key: str,
    generation: int,
    *,
    now: datetime,
    file_path: str | None = None,
) -> Manifest:
    """Copy the generation's members into a new manifest, inside the database (no round trip
    per member); recording the same manifest twice is a no-op."""
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    mid = manifest_id(rule, key, generation)
    m = members_table
    copied = (
        upsert(dialect, manifest_members)
        .from_select(
            ["manifest_id", "member", "data"],
            select(literal(mid), m.c.member, m.c.data).where(
                m.c.rule == rule, m.c.key == key, m.c.generation == generation
            ),
        )
        .on_conflict_do_nothing(index_elements=["manifest_id", "member"])
    )
    bind.execute(copied)
    count = _member_count(bind, mid)
    row = {
        "id": mid,
        "rule": rule,
        "key": key,
        "generation": generation,
        "member_count": count,
        "created_at": now,
        "file_path": file_path,
    }
    bind.execute(upsert(dialect, manifests).values(row).on_conflict_do_nothing())
    return Manifest(mid, rule, key, generation, count, now, file_path)


def _member_count(bind: Session | Connection, mid: str) -> int:
    query = select(func.count()).where(manifest_members.c.manifest_id == mid)
    return int(bind.execute(query).scalar_one())


def load_manifest(bind: Session | Connection, mid: str) -> Manifest | None:
    row = bind.execute(select(manifests).where(manifests.c.id == mid)).first()
    if row is None:
        return None
    return Manifest(
        row.id, row.rule, row.key, row.generation, row.member_count, row.created_at, row.file_path
    )


def iter_members(bind: Session | Connection, mid: str) -> Iterator[tuple[str, Any]]:
    """(member, data) in member order, fetched in chunks (a server-side cursor on PostgreSQL)."""
    query = (
        select(manifest_members.c.member, manifest_members.c.data)
        .where(manifest_members.c.manifest_id == mid)
        .order_by(manifest_members.c.member)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for row in bind.execute(query):
        yield row.member, row.data


def path_of(member: str, data: Any) -> str:
    """What the JSON file lists for a member: its data's `path` if it has one, else the member."""
    path = data.get("path") if isinstance(data, Mapping) else None
    return path if isinstance(path, str) else member


def member_record(member: str, data: Any) -> dict[str, str]:
    """A batch job's member: the member, its path (as in the manifest file) and a name (its
    data's `name`, else the path's last part)."""
    path = path_of(member, data)
    name = data.get("name") if isinstance(data, Mapping) else None
    return {"id": member, "name": name if isinstance(name, str) else Path(path).name, "path": path}


def write_manifest_file(bind: Session | Connection, mid: str, path: str) -> None:
    """Write the JSON list of member paths (sorted), atomically: a reader never sees half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    paths = sorted(path_of(member, data) for member, data in iter_members(bind, mid))
    with temporary.open("w", encoding="utf-8") as out:
        out.write("[")
        for i, p in enumerate(paths):
            out.write(("," if i else "") + "\n  " + json.dumps(p))
        out.write("\n]\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
