"""SqlStore: the `Store` port on SQLite or PostgreSQL, including the outbox the relay drains."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from ..model import Submission
from ..ports import Clock, OutboxRow
from .engine import make_engine, redacted
from .errors import store_errors
from .migrate import ensure_current
from .models import FAILED, PENDING, SENT, STATUSES
from .statements import submissions
from .unit_of_work import SqlUnitOfWork

_OUTBOX_COLUMNS = tuple(
    submissions.c[name]
    for name in (
        "job_id",
        "rule",
        "extractor",
        "resource_type",
        "resource_id",
        "via",
        "parameters",
        "event_message_id",
        "body",
        "properties",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
    )
)
MAX_ERROR_CHARS = 4000


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """The state database. Connects lazily; call `close()` to release pooled connections.

    `schema` (PostgreSQL only; ValueError on SQLite) puts every table in that schema through
    the connection's search_path, which is how tests get a private database each.
    Connection failures surface as `StoreError`; the pool pre-pings, so the next call after
    the database comes back works again.
    """

    def __init__(self, url: str, *, schema: str | None = None, clock: Clock = utc_now) -> None:
        self.engine = make_engine(url, schema)
        self.schema = schema
        self.clock = clock
        self._where = redacted(url)

    def __repr__(self) -> str:
        return f"SqlStore({self._where!r}, schema={self.schema!r})"

    def close(self) -> None:
        self.engine.dispose()

    def ensure_current(self) -> None:
        """Raise NotMigrated unless this database is at the head revision."""
        ensure_current(self.engine, self.schema)

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlUnitOfWork]:
        """One transaction: commit on clean exit, roll back if the block raises."""
        with (
            store_errors(self._where),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            uow = SqlUnitOfWork(session, self.clock)
            yield uow
            uow.flush()  # the buffered inventory rows go in before the commit

    def due_outbox(self, limit: int, now: datetime | None = None) -> list[OutboxRow]:
        """Pending rows due by `now`, oldest first (a read-only listing; see `claim_due`)."""
        now = now or self.clock()
        query = (
            select(*_OUTBOX_COLUMNS)
            .where(submissions.c.status == PENDING, submissions.c.next_attempt_at <= now)
            .order_by(submissions.c.next_attempt_at, submissions.c.created_at)
            .limit(limit)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            return [_outbox_row(row) for row in connection.execute(query)]

    def claim_due(self, limit: int, lease_s: float) -> list[OutboxRow]:
        """Take up to `limit` due pending rows and push their next attempt `lease_s` ahead.

        One statement: on PostgreSQL rows another relay is claiming are skipped (SKIP LOCKED),
        so concurrent relays get disjoint rows; a relay that dies mid-send leaves its rows to
        come due again when the lease ends. The rows come back oldest first.
        """
        now = self.clock()
        due = (
            select(submissions.c.job_id)
            .where(submissions.c.status == PENDING, submissions.c.next_attempt_at <= now)
            .order_by(submissions.c.next_attempt_at, submissions.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(submissions)
            .where(submissions.c.job_id.in_(due.scalar_subquery()))
            .values(next_attempt_at=now + timedelta(seconds=lease_s))
            .returning(*_OUTBOX_COLUMNS)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            rows = list(connection.execute(statement))
        rows.sort(key=lambda r: (r.created_at, r.job_id))
        return [_outbox_row(row) for row in rows]

    def mark_sent(self, job_id: str) -> None:
        """Record a successful send (counted as an attempt)."""
        self._update(job_id, status=SENT, sent_at=self.clock(), attempts=submissions.c.attempts + 1)

    def mark_sent_many(self, job_ids: Sequence[str]) -> None:
        """Record several successful sends in one statement (each counted as one attempt)."""
        if not job_ids:
            return
        statement = (
            update(submissions)
            .where(submissions.c.job_id.in_(list(dict.fromkeys(job_ids))))
            .values(status=SENT, sent_at=self.clock(), attempts=submissions.c.attempts + 1)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            connection.execute(statement)

    def mark_attempt_failed(
        self, job_id: str, error: str, retry_at: datetime | None, give_up: bool
    ) -> None:
        """Count a failed attempt; retry at `retry_at` (now if None), or mark failed for good."""
        values: dict[str, Any] = {
            "attempts": submissions.c.attempts + 1,
            "last_error": error[:MAX_ERROR_CHARS],
        }
        if give_up:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = retry_at or self.clock()
        self._update(job_id, **values)

    def recent_submissions(self, limit: int, *, status: str | None = None) -> list[OutboxRow]:
        """The newest `limit` submissions, newest first; only those in `status` if given."""
        query = (
            select(*_OUTBOX_COLUMNS)
            .order_by(submissions.c.created_at.desc(), submissions.c.job_id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(submissions.c.status == status)
        with store_errors(self._where), self.engine.begin() as connection:
            return [_outbox_row(row) for row in connection.execute(query)]

    def counts_by_status(self) -> dict[str, int]:
        """Submissions per status; pending, sent and failed are always present."""
        query = select(submissions.c.status, func.count()).group_by(submissions.c.status)
        with store_errors(self._where), self.engine.begin() as connection:
            counts = {status: 0 for status in STATUSES}
            counts.update({status: count for status, count in connection.execute(query)})
            return counts

    def _update(self, job_id: str, **values: Any) -> None:
        statement = update(submissions).where(submissions.c.job_id == job_id).values(**values)
        with store_errors(self._where), self.engine.begin() as connection:
            connection.execute(statement)


def _outbox_row(row: Row[Any]) -> OutboxRow:
    submission = Submission(
        job_id=row.job_id,
        rule=row.rule,
        extractor=row.extractor,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        via=row.via,
        parameters=MappingProxyType(dict(row.parameters or {})),
        event_message_id=row.event_message_id,
    )
    return OutboxRow(
        submission=submission,
        body=row.body,
        properties=row.properties,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )
