"""SqlStore: the `Store` port on SQLite or PostgreSQL, including the outbox the relay drains."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Row,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..clock import utc_now
from ..model import Submission
from ..ports import Clock, OutboxRow
from .engine import make_engine, redacted
from .errors import store_errors
from .job_records import mark_failed, mark_submitted
from .manifests import write_manifest_file
from .migrate import ensure_current
from .models import FAILED, PENDING, SENT, STATUSES
from .outbox_sent import held, mark_sent, scrub_bodies
from .statements import messages, submissions
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
        "options",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "claim_token",
    )
)
MAX_ERROR_CHARS = 4000


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
            uow = SqlUnitOfWork(session, self.clock, self._where)
            yield uow
            uow.flush()  # the buffered inventory rows go in before the commit

    def write_manifest_file(self, manifest_id: str, path: str) -> None:
        """Write a manifest's JSON file from its members (`ports.ManifestFiles`)."""
        with store_errors(self._where), self.engine.connect() as connection:
            write_manifest_file(connection, manifest_id, path)

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

    def claim_due(
        self,
        limit: int,
        lease_s: float,
        *,
        vias: Collection[str] | None = None,
        exclude_vias: Collection[str] = (),
    ) -> list[OutboxRow]:
        """Claim up to `limit` due pending rows for `lease_s`, under one fresh claim token.

        One statement: on PostgreSQL rows another relay is claiming are skipped (SKIP LOCKED),
        so concurrent relays get disjoint rows; a relay that dies mid-send leaves its rows to
        come due again when the claim ends. Claiming a row gives it a new token, which fences
        off the previous holder: `renew_claims`, `mark_sent_many` and `mark_attempt_failed`
        act only for the current token. `vias` / `exclude_vias` restrict the claim to rows of
        those targets (one relay thread per target). The rows come back oldest first, each
        with `claim_token` set.
        """
        now = self.clock()
        until = now + timedelta(seconds=lease_s)
        token = uuid.uuid4().hex
        due = select(submissions.c.job_id).where(
            submissions.c.status == PENDING, submissions.c.next_attempt_at <= now
        )
        if vias is not None:
            due = due.where(submissions.c.via.in_(list(vias)))
        if exclude_vias:
            due = due.where(submissions.c.via.not_in(list(exclude_vias)))
        due = (
            due.order_by(submissions.c.next_attempt_at, submissions.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(submissions)
            .where(submissions.c.job_id.in_(due.scalar_subquery()))
            .values(next_attempt_at=until, claimed_until=until, claim_token=token)
            .returning(*_OUTBOX_COLUMNS)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            rows = list(connection.execute(statement))
        rows.sort(key=lambda r: (r.created_at, r.job_id))
        return [_outbox_row(row) for row in rows]

    def renew_claims(self, job_ids: Sequence[str], claim_token: str, lease_s: float) -> set[str]:
        """Extend the claim on rows still held under `claim_token`; the job ids still held.

        The relay calls this right before it sends: a row missing from the answer was claimed
        by another relay (its claim ran out while this one was slow) or is no longer pending,
        and must not be sent.
        """
        if not job_ids:
            return set()
        until = self.clock() + timedelta(seconds=lease_s)
        statement = (
            update(submissions)
            .where(
                submissions.c.job_id.in_(list(dict.fromkeys(job_ids))),
                submissions.c.claim_token == claim_token,
                submissions.c.status == PENDING,
            )
            .values(next_attempt_at=until, claimed_until=until)
            .returning(submissions.c.job_id)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            return set(connection.execute(statement).scalars())

    def release_claims(self, job_ids: Sequence[str], claim_token: str) -> None:
        """Hand back rows claimed but not tried (the relay is stopping): due again at once."""
        if not job_ids:
            return
        statement = (
            update(submissions)
            .where(
                submissions.c.job_id.in_(list(dict.fromkeys(job_ids))),
                submissions.c.claim_token == claim_token,
                submissions.c.status == PENDING,
            )
            .values(next_attempt_at=self.clock(), claimed_until=None, claim_token=None)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            connection.execute(statement)

    def mark_sent(self, job_id: str, *, claim_token: str | None = None) -> bool:
        """Record a successful send (counted as an attempt), its body's secrets scrubbed;
        False if the row is not pending or (with `claim_token`) is held under another claim."""
        with store_errors(self._where), self.engine.begin() as connection:
            body = connection.execute(
                select(submissions.c.body).where(submissions.c.job_id == job_id)
            ).scalar_one_or_none()
            now = self.clock()
            marked = mark_sent(connection, [(job_id, body)], claim_token, now)
            mark_submitted(connection, marked, now)
        return job_id in marked

    def mark_sent_many(
        self, rows: Sequence[OutboxRow], answers: Mapping[str, str] | None = None
    ) -> set[str]:
        """Record several successful sends at once; the job ids marked.

        Each row is marked only while it is pending and still held under the `claim_token` it
        was claimed with (rows without a token: unfenced), and its stored body loses its
        secrets (`secretKey`, ...) in the same transaction, so a sent row never keeps them.
        """
        by_token: dict[str | None, dict[str, Any]] = {}
        for row in rows:
            by_token.setdefault(row.claim_token, {})[row.submission.job_id] = row.body
        marked: set[str] = set()
        now = self.clock()
        with store_errors(self._where), self.engine.begin() as connection:
            for token, bodies in by_token.items():
                marked |= mark_sent(connection, list(bodies.items()), token, now)
            mark_submitted(connection, marked, now, answers)
        return marked

    def mark_attempt_failed(
        self,
        job_id: str,
        error: str,
        retry_at: datetime | None,
        give_up: bool,
        *,
        claim_token: str | None = None,
    ) -> bool:
        """Count a failed attempt; retry at `retry_at` (now if None), or mark failed for good
        (its body's secrets scrubbed: it will never be sent). Ends the claim. False (nothing
        changed) if the row is not pending or (with `claim_token`) held under another claim."""
        values: dict[str, Any] = {
            "attempts": submissions.c.attempts + 1,
            "last_error": error[:MAX_ERROR_CHARS],
            "claimed_until": None,
            "claim_token": None,
        }
        if give_up:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = retry_at or self.clock()
        statement = (
            update(submissions)
            .where(*held(job_id, claim_token))
            .values(**values)
            .returning(submissions.c.body)
        )
        with store_errors(self._where), self.engine.begin() as connection:
            body = connection.execute(statement).scalar_one_or_none()
            if body is None:
                return False
            if give_up:
                scrub_bodies(connection, [(job_id, body)])
                mark_failed(connection, job_id, error[:MAX_ERROR_CHARS], self.clock())
        return True

    def prune(self, before: datetime, limit: int) -> tuple[int, int]:
        """Delete up to `limit` sent or failed outbox rows whose last attempt was before
        `before`, and up to `limit` ledger ids processed before then; (rows, ids) deleted.

        Pending rows are never touched. Each table in its own short transaction.
        """
        old_rows = (
            select(submissions.c.job_id)
            .where(submissions.c.status.in_([SENT, FAILED]), submissions.c.next_attempt_at < before)
            .limit(limit)
        )
        old_ids = select(messages.c.message_id).where(messages.c.processed_at < before).limit(limit)
        with store_errors(self._where):
            with self.engine.begin() as connection:
                rows = connection.execute(
                    delete(submissions).where(submissions.c.job_id.in_(old_rows.scalar_subquery()))
                ).rowcount
            with self.engine.begin() as connection:
                ids = connection.execute(
                    delete(messages).where(messages.c.message_id.in_(old_ids.scalar_subquery()))
                ).rowcount
        return rows, ids

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
        options=MappingProxyType(dict(row.options or {})),
    )
    return OutboxRow(
        submission=submission,
        body=row.body,
        properties=row.properties,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        claim_token=row.claim_token,
    )
