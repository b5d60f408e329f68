"""Retention of the archive (by age and/or by rows) and a row limit for the ledger and outbox.

Each call deletes at most `limit` rows per table, each table in its own short transaction, so
pruning never holds locks intake waits on for long. Age pruning of the ledger and of finished
outbox rows is `SqlStore.prune`; this adds the archive and, with a row limit, keeps only the
newest `keep_rows` of the archive, the ledger and the finished outbox rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, or_, select, tuple_

from ..store.models import FAILED, SENT
from ..store.sql import SqlStore
from ..store.statements import messages, submissions
from .archive import archive_table, memberships


def _delete_in(connection: Connection, table: Any, column: Any, chosen: Select[Any]) -> int:
    statement = delete(table).where(column.in_(chosen.scalar_subquery()))
    return int(connection.execute(statement).rowcount or 0)


def _cutoff(connection: Connection, column: Any, where: Any, keep_rows: int) -> Any:
    """The value of `column` of the newest row beyond the `keep_rows` newest (None if fewer)."""
    query = select(column).order_by(column.desc()).offset(keep_rows).limit(1)
    if where is not None:
        query = query.where(where)
    return connection.execute(query).scalar_one_or_none()


def _beyond(connection: Connection, when: Any, key: Any, where: Any, keep_rows: int) -> Any:
    """A condition selecting the rows beyond the `keep_rows` newest by (`when`, `key`) (ties
    of `when`, as within one batch, broken by `key`), or None if there are not that many."""
    query = select(when, key).order_by(when.desc(), key.desc()).offset(keep_rows).limit(1)
    if where is not None:
        query = query.where(where)
    row = connection.execute(query).first()
    if row is None:
        return None
    return or_(when < row[0], and_(when == row[0], key <= row[1]))


def prune_provenance(
    store: SqlStore, before: datetime | None, keep_rows: int, limit: int
) -> dict[str, int]:
    """Delete up to `limit` rows per table; the number deleted per table name."""
    deleted = {"archive": 0, "memberships": 0, "ledger": 0, "outbox": 0}
    with store.engine.begin() as connection:
        if keep_rows > 0:
            cut_id = _cutoff(connection, archive_table.c.id, None, keep_rows)
            if cut_id is not None:
                old = select(archive_table.c.id).where(archive_table.c.id <= cut_id).limit(limit)
                deleted["archive"] += _delete_in(connection, archive_table, archive_table.c.id, old)
        if before is not None:
            old = select(archive_table.c.id).where(archive_table.c.arrived_at < before).limit(limit)
            deleted["archive"] += _delete_in(connection, archive_table, archive_table.c.id, old)
    with store.engine.begin() as connection:
        oldest = connection.execute(
            select(archive_table.c.arrived_at).order_by(archive_table.c.id).limit(1)
        ).scalar_one_or_none()
        cut = before if oldest is None or (before is not None and before < oldest) else oldest
        if cut is not None:
            m = memberships.c
            columns = (m.rule, m.key, m.member, m.message_id)
            old = select(*columns).where(m.arrived_at < cut).limit(limit)
            statement = delete(memberships).where(tuple_(*columns).in_(old))
            deleted["memberships"] = int(connection.execute(statement).rowcount or 0)
    if keep_rows > 0:
        with store.engine.begin() as connection:
            beyond = _beyond(
                connection, messages.c.processed_at, messages.c.message_id, None, keep_rows
            )
            if beyond is not None:
                old = select(messages.c.message_id).where(beyond).limit(limit)
                deleted["ledger"] = _delete_in(connection, messages, messages.c.message_id, old)
        with store.engine.begin() as connection:
            finished = submissions.c.status.in_([SENT, FAILED])
            when, key = submissions.c.next_attempt_at, submissions.c.job_id
            beyond = _beyond(connection, when, key, finished, keep_rows)
            if beyond is not None:
                old = select(key).where(finished, beyond).limit(limit)
                deleted["outbox"] = _delete_in(connection, submissions, submissions.c.job_id, old)
    return deleted
