"""Reads of the archive: one event, events in a window, and a dataset's files as they were."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from ..model import DatasetView, FileInfo
from ..store.statements import datasets, files
from .archive import archive_table, memberships

ArchivedRow = Any  # a Row of `event_archive`


def archived_event(connection: Connection, message_id: str) -> ArchivedRow | None:
    """The newest archive row of `message_id` (a message processed again after its ledger
    entry was pruned has one row per time)."""
    query = (
        select(archive_table)
        .where(archive_table.c.message_id == message_id)
        .order_by(archive_table.c.id.desc())
        .limit(1)
    )
    return connection.execute(query).first()


def archived_events(
    connection: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dataset_id: str | None = None,
    chunk: int = 500,
    after_page: Callable[[], object] | None = None,
) -> Iterator[ArchivedRow]:
    """Processed archive rows in arrival order, read `chunk` rows at a time (keyset paging, so
    a running daemon's inserts never shift the pages); `after_page` runs after each read (to
    end the read's transaction, which on SQLite would keep writers out)."""
    last_id = 0
    while True:
        query = _window(select(archive_table), since, until, dataset_id)
        query = query.where(archive_table.c.id > last_id)
        rows = connection.execute(query.order_by(archive_table.c.id).limit(chunk)).all()
        if after_page is not None:
            after_page()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def _window(
    query: Select[Any], since: datetime | None, until: datetime | None, dataset_id: str | None
) -> Select[Any]:
    """`query` narrowed to processed events in the window (and dataset) asked for."""
    query = query.where(archive_table.c.status == "processed")
    if since is not None:
        query = query.where(archive_table.c.arrived_at >= since)
    if until is not None:
        query = query.where(archive_table.c.arrived_at < until)
    if dataset_id is not None:
        query = query.where(archive_table.c.dataset_id == dataset_id)
    return query


def count_archived(
    connection: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dataset_id: str | None = None,
) -> int:
    """How many processed events `archived_events` would read."""
    query = _window(select(func.count()).select_from(archive_table), since, until, dataset_id)
    return int(connection.execute(query).scalar_one())


def view_then(connection: Connection, row: ArchivedRow) -> DatasetView:
    """The dataset as the event's rules saw it: its first `files_seen` files in arrival order
    (the inventory keeps positions), with the name it had."""
    dataset_id = row.dataset_id or ""
    name = (row.event or {}).get("dataset_name")
    if not dataset_id:
        return DatasetView(id="", name=name)
    if name is None:
        name = connection.execute(
            select(datasets.c.name).where(datasets.c.id == dataset_id)
        ).scalar_one_or_none()
    query = (
        select(files.c.file_id, files.c.name, files.c.mime_type, files.c.size)
        .where(files.c.dataset_id == dataset_id)
        .order_by(files.c.position, files.c.first_seen_at, files.c.file_id)
    )
    if row.files_seen is not None:
        query = query.limit(row.files_seen)
    seen = tuple(
        FileInfo(r.file_id, r.name or "", r.mime_type or "", r.size)
        for r in connection.execute(query)
    )
    return DatasetView(dataset_id, name, seen)


def member_events(connection: Connection, rule: str, key: str) -> dict[str, list[str]]:
    """Member -> the message ids of the events that added it to (rule, key)."""
    query = (
        select(memberships.c.member, memberships.c.message_id)
        .where(memberships.c.rule == rule, memberships.c.key == key)
        .order_by(memberships.c.arrived_at, memberships.c.message_id)
    )
    found: dict[str, list[str]] = {}
    for member, message_id in connection.execute(query):
        found.setdefault(member, []).append(message_id)
    return found
