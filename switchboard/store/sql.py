"""SqlStore: the `Store` port on SQLite or PostgreSQL, including the outbox the relay drains."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Update,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..clock import utc_now
from ..model import Submission
from ..ports import Clock, OutboxRow
from .claim_owner import OWNER_DIGITS, TOKEN_MARK, ClaimOwner, orphaned_claim, owned_by_live_session
from .engine import make_engine, redacted
from .errors import store_errors
from .job_records import UNTRACKED_VIAS, mark_failed, mark_submitted
from .manifests import iter_members, load_manifest, member_record, write_manifest_file
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
log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000
REAP_EVERY_S = 0.5  # how often claims of owners that are gone are looked for


def _owner_alive(claim_token: str) -> list[Any]:
    """The WHERE clause that an owned claim's owner still holds its session lock (none for
    claims without an owner: SQLite, or a database that was unreachable at claim time)."""
    if not claim_token.startswith(TOKEN_MARK):
        return []
    return [owned_by_live_session(int(claim_token[1 : 1 + OWNER_DIGITS]))]


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
        # claims name this store's session lock, so a dead daemon's rows come back at once
        self._owner = ClaimOwner(self.engine) if self.engine.dialect.name == "postgresql" else None
        self._reaped_at = -REAP_EVERY_S
        self._claims: dict[tuple[Any, ...], Update] = {}  # see _claim_statement
        # the relay's single-statement writes, each its own transaction on PostgreSQL: one
        # round trip instead of BEGIN, the statement and COMMIT
        self._autocommit = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else None
        )

    def __repr__(self) -> str:
        return f"SqlStore({self._where!r}, schema={self.schema!r})"

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()
        self.engine.dispose()

    @contextmanager
    def _statements(self) -> Iterator[Connection]:
        """A connection whose every statement commits on its own (PostgreSQL), or one
        transaction (SQLite, which serialises writers anyway), with errors as StoreError."""
        with store_errors(self._where):
            if self._autocommit is None:
                with self.engine.begin() as connection:
                    yield connection
            else:
                with self._autocommit.connect() as connection:
                    yield connection

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

    def manifest_members(self, manifest_id: str) -> Iterator[dict[str, str]]:
        """A fired collection's members for its batch job, streamed (`ports.JobMembers`)."""
        with store_errors(self._where), self.engine.connect() as connection:
            for member, data in iter_members(connection, manifest_id):
                yield member_record(member, data)

    def dataset_members(self, dataset_id: str) -> list[dict[str, str]]:
        """The files the inventory knows of a dataset, for its batch job (`ports.JobMembers`);
        a file's path is its name (Clowder holds the bytes)."""
        with self.unit_of_work() as uow:
            files = uow.dataset(dataset_id).files
        return [{"id": f.id, "name": f.name, "path": f.name or f.id} for f in files]

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
        owner = self._owner if self._owner is not None and self._owner.ensure() else None
        token = owner.token() if owner is not None else uuid.uuid4().hex
        statement = self._claim_statement(
            vias, exclude_vias, owner.owner_id if owner is not None else None
        )
        values = {"now": now, "until": until, "token": token, "limit": limit}
        with self._statements() as connection:
            if owner is not None:
                self._reap_orphaned_claims(connection, now)
            rows = list(connection.execute(statement, values))
        rows.sort(key=lambda r: (r.created_at, r.job_id))
        return [_outbox_row(row) for row in rows]

    def _claim_statement(
        self, vias: Collection[str] | None, exclude_vias: Collection[str], owner_id: int | None
    ) -> Update:
        """`claim_due`'s UPDATE for these targets and owner, built once (a relay claims every
        batch, and building it was 40 % of a claim's CPU); bound: now, until, token and
        limit."""
        key = (
            None if vias is None else tuple(sorted(vias)),
            tuple(sorted(exclude_vias)),
            owner_id,
        )
        statement = self._claims.get(key)
        if statement is not None:
            return statement
        due = select(submissions.c.job_id).where(
            submissions.c.status == PENDING, submissions.c.next_attempt_at <= bindparam("now")
        )
        if vias is not None:
            due = due.where(submissions.c.via.in_(list(vias)))
        if exclude_vias:
            due = due.where(submissions.c.via.not_in(list(exclude_vias)))
        if owner_id is not None:  # only while our lock is held: else others may take them back
            due = due.where(owned_by_live_session(owner_id))
        due = (
            due.order_by(submissions.c.next_attempt_at, submissions.c.created_at)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
        )
        until = bindparam("until", type_=submissions.c.next_attempt_at.type)
        statement = (
            update(submissions)
            .where(submissions.c.job_id.in_(due.scalar_subquery()))
            .values(next_attempt_at=until, claimed_until=until, claim_token=bindparam("token"))
            .returning(*_OUTBOX_COLUMNS)
        )
        self._claims[key] = statement
        return statement

    def _reap_orphaned_claims(self, connection: Connection, now: datetime) -> None:
        """Make the rows claimed by owners whose session has ended due now (at most once per
        `REAP_EVERY_S`): their daemon died, it will neither send nor mark them."""
        if time.monotonic() - self._reaped_at < REAP_EVERY_S:
            return
        self._reaped_at = time.monotonic()
        statement = (
            update(submissions)
            .where(
                submissions.c.status == PENDING,
                submissions.c.next_attempt_at > now,
                orphaned_claim(),
            )
            .values(next_attempt_at=now, claimed_until=None, claim_token=None)
            .returning(submissions.c.job_id)
        )
        reaped = len(list(connection.execute(statement)))
        if reaped:
            log.info("took back %d outbox rows claimed by a daemon that is gone", reaped)

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
                *_owner_alive(claim_token),
            )
            .values(next_attempt_at=until, claimed_until=until)
            .returning(submissions.c.job_id)
        )
        with self._statements() as connection:
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
        with self._statements() as connection:
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
        # forwarded status updates are no jobs: no job to mark submitted (three statements
        # saved per relay round of them, a cost every status update paid)
        jobs = {r.submission.job_id for r in rows if r.submission.via not in UNTRACKED_VIAS}
        marked: set[str] = set()
        now = self.clock()
        with self._statements() as connection:  # each token's UPDATE stands on its own
            for token, bodies in by_token.items():
                marked |= mark_sent(connection, list(bodies.items()), token, now)
            mark_submitted(connection, marked & jobs, now, answers)
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

    def manifest_submissions(self, manifest_id: str, via: str) -> list[OutboxRow]:
        """The outbox rows a firing with this manifest queued for `via` (`switchboard ray
        submit`); none for an unknown manifest."""
        with store_errors(self._where), self.engine.begin() as connection:
            manifest = load_manifest(connection, manifest_id)
            if manifest is None:
                return []
            query = select(*_OUTBOX_COLUMNS).where(
                submissions.c.rule == manifest.rule, submissions.c.via == via
            )
            rows = [_outbox_row(row) for row in connection.execute(query)]
        return [r for r in rows if r.submission.parameters.get("manifest_id") == manifest_id]

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
