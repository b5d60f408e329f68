"""Manifests: a firing's frozen, sorted member list in the database, and its optional JSON file.

The file is written by `ManifestFileSink` just before the firing's message is sent, from the
database, so a crash after the commit cannot lose it: the outbox row still waits, and the
file is (re)written before the row goes out. Members are streamed, never all held in memory.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, literal, select
from sqlalchemy.orm import Session

from ..errors import DeliveryFailed, SubmissionRejected
from ..ports import OutboxRow, Sink
from ..store.collection_tables import ManifestMember, ManifestRow
from ..store.errors import store_errors
from ..store.progress import members_table
from ..store.statements import upsert

manifests = cast(Table, ManifestRow.__table__)
manifest_members = cast(Table, ManifestMember.__table__)

_NAMESPACE = uuid.UUID("0b9f5c1e-2d7a-4f43-8e61-7c2b9a5d4e10")
STREAM_ROWS = 2000


def manifest_id(rule: str, key: str, generation: int) -> str:
    """Deterministic, so a retried firing transaction records the same manifest."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((rule, key, str(generation)))))


def manifest_path(manifest_dir: str, mid: str) -> str:
    return str(Path(manifest_dir) / f"{mid}.json")


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    rule: str
    key: str
    generation: int
    member_count: int
    created_at: datetime
    file_path: str | None


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
    if isinstance(data, Mapping) and isinstance(data.get("path"), str):
        return data["path"]
    return member


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


class ManifestFileSink:
    """Wraps a sink: writes a firing's manifest file (if asked for and missing) before sending.

    The file must be `<manifest_id>.json` directly inside `manifest_dir` (symbolic links
    resolved); a row naming any other path is refused with SubmissionRejected (failed at once),
    so no submission's parameters can make the relay write elsewhere. A file that cannot be
    written (unwritable or missing SWITCHBOARD_MANIFEST_DIR, full disk) raises DeliveryFailed:
    the relay retries the row with backoff and finally marks it failed, so `switchboard status`
    shows why. A lost database raises StoreError (reconnect path).
    """

    def __init__(self, inner: Sink, engine: Any, manifest_dir: str) -> None:
        self.inner = inner
        self.engine = engine
        self.manifest_dir = manifest_dir

    def send(self, row: OutboxRow) -> None:
        self.ensure_file(row)
        self.inner.send(row)

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]:
        """Like the inner sink's `send_many`; a row whose file cannot be written fails alone."""
        failed: list[tuple[OutboxRow, Exception | None]] = []
        ready = []
        for row in rows:
            try:
                self.ensure_file(row)
            except (DeliveryFailed, SubmissionRejected) as exc:
                failed.append((row, exc))
            else:
                ready.append(row)
        inner_many = getattr(self.inner, "send_many", None)
        if inner_many is not None:
            return failed + list(inner_many(ready))
        results = failed
        for row in ready:
            try:
                self.inner.send(row)
            except Exception as exc:  # reported per row, as send_many does
                results.append((row, exc))
            else:
                results.append((row, None))
        return results

    def ensure_file(self, row: OutboxRow) -> None:
        """Write the row's manifest file if it asks for one that is missing; SubmissionRejected
        if its path is not its own file in the manifest folder, DeliveryFailed if the file
        system refuses."""
        parameters = row.submission.parameters
        path = parameters.get("file_paths")
        mid = parameters.get("manifest_id")
        if not (isinstance(path, str) and isinstance(mid, str)):
            return
        target = self.checked_path(path, mid)
        try:
            if target.exists():
                return
            with store_errors(repr(self.engine.url)), self.engine.connect() as connection:
                write_manifest_file(connection, mid, str(target))
        except OSError as exc:
            raise DeliveryFailed(f"writing manifest file {path}: {exc}") from exc

    def checked_path(self, path: str, mid: str) -> Path:
        """`path` resolved, if it is `<mid>.json` directly in the manifest folder."""
        if not self.manifest_dir:
            raise SubmissionRejected(
                f"manifest file {path!r} refused: SWITCHBOARD_MANIFEST_DIR is not set"
            )
        folder = Path(self.manifest_dir).resolve()
        expected = folder / f"{mid}.json"
        if expected.parent != folder or Path(path).resolve() != expected:
            raise SubmissionRejected(
                f"manifest file {path!r} refused: not <manifest_id>.json inside "
                "SWITCHBOARD_MANIFEST_DIR"
            )
        return expected

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def with_manifest_files(
    sinks: Mapping[str, Sink], engine: Any, manifest_dir: str
) -> dict[str, Sink]:
    """Every sink wrapped in a ManifestFileSink writing into `manifest_dir` (wired in app.py)."""
    return {via: ManifestFileSink(sink, engine, manifest_dir) for via, sink in sinks.items()}
