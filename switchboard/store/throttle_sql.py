"""Admitting a target's outbox rows under its throttle row's lock (`throttle.Admissions`).

Two relays (threads or daemons) admitting rows of one target serialise on the target's row
in `target_throttles`: on PostgreSQL `SELECT ... FOR UPDATE` (after an upsert creating it),
on SQLite the upsert's write lock, which holds until the transaction ends. Inside that lock
the in-flight count, the admissions and the token bucket are read and written together, so
the sum of what every relay admits never exceeds `max_in_flight`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Connection, Engine, Table, exists, func, or_, select, update

from ..jobs import statuses as st
from ..ports import Clock, OutboxRow
from ..throttle import THROTTLED, TargetLimit
from .control_tables import TargetThrottleRow
from .errors import store_errors
from .job_tables import jobs
from .models import PENDING, SENT
from .statements import submissions, upsert

throttles = cast(Table, TargetThrottleRow.__table__)


class SqlAdmissions:
    """`throttle.Admissions` on the state database."""

    def __init__(self, engine: Engine, clock: Clock, where: str = "database") -> None:
        self.engine = engine
        self.clock = clock
        self._where = where

    def admit(
        self,
        target: str,
        limit: TargetLimit,
        rows: Sequence[OutboxRow],
        *,
        in_flight_timeout_s: float,
        recheck_s: float,
    ) -> set[str]:
        """Admit what the limits allow of `rows` (oldest first); hold the rest as throttled."""
        ids = [row.submission.job_id for row in rows]
        with store_errors(self._where), self.engine.begin() as connection:
            now = self.clock()
            tokens = self._lock(connection, target, limit)
            room = len(ids)
            if limit.max_in_flight is not None:
                since = now - timedelta(seconds=in_flight_timeout_s)
                room = min(room, limit.max_in_flight - in_flight(connection, target, since, ids))
            delay_s = recheck_s
            if limit.rate_per_s is not None and math.floor(tokens) < room:
                room = math.floor(tokens)  # the rate binds: the next token comes in 1/rate s
                delay_s = max(0.05, min(recheck_s, 1.0 / limit.rate_per_s))
            room = max(0, room)
            admitted, held = ids[:room], ids[room:]
            if admitted:
                connection.execute(
                    update(submissions)
                    .where(submissions.c.job_id.in_(admitted))
                    .values(admitted_at=now, hold_reason=None)
                )
                connection.execute(
                    update(jobs)
                    .where(jobs.c.job_id.in_(admitted), jobs.c.latest_message == THROTTLED)
                    .values(latest_message=None)
                )
            until = now + timedelta(seconds=delay_s)
            kept = set(held)
            self._hold(connection, [r for r in rows if r.submission.job_id in kept], until)
            if held:
                self._hold_the_rest(connection, target, now, until)
            if limit.rate_per_s is not None:
                connection.execute(
                    update(throttles)
                    .where(throttles.c.target == target)
                    .values(tokens=tokens - len(admitted))
                )
        return set(admitted)

    @staticmethod
    def _hold_the_rest(connection: Connection, target: str, now: datetime, until: datetime) -> None:
        """The target is full: its other due rows (claimed by nobody) wait too, so relays do
        not claim them one chunk after another only to hold them."""
        connection.execute(
            update(submissions)
            .where(
                submissions.c.extractor == target,
                submissions.c.status == PENDING,
                submissions.c.next_attempt_at <= now,
                submissions.c.admitted_at.is_(None),  # a retry of one in flight goes its way
                submissions.c.claim_token.is_(None) | (submissions.c.claimed_until <= now),
            )
            .values(
                hold_reason=THROTTLED, claim_token=None, claimed_until=None, next_attempt_at=until
            )
        )

    @staticmethod
    def _hold(connection: Connection, rows: Sequence[OutboxRow], until: datetime) -> None:
        """Hand the rows' claims back, marked throttled, due again at `until`."""
        by_token: dict[str | None, list[str]] = {}
        for row in rows:
            by_token.setdefault(row.claim_token, []).append(row.submission.job_id)
        for token, ids in by_token.items():
            held_by = (
                submissions.c.claim_token.is_(None)
                if token is None
                else submissions.c.claim_token == token
            )
            connection.execute(
                update(submissions)
                .where(submissions.c.job_id.in_(ids), submissions.c.status == PENDING, held_by)
                .values(
                    hold_reason=THROTTLED,
                    admitted_at=None,  # held again (a retry): no longer in flight
                    claim_token=None,
                    claimed_until=None,
                    next_attempt_at=until,
                )
            )
            _mark_jobs_throttled(connection, jobs.c.job_id.in_(ids))

    def _lock(self, connection: Connection, target: str, limit: TargetLimit) -> float:
        """Take the target's throttle row (creating it), refill its bucket; the tokens now."""
        now = self.clock()
        capacity = max(1.0, limit.rate_per_s or 1.0)
        dialect = connection.dialect.name
        connection.execute(
            upsert(dialect, throttles)
            .values(target=target, tokens=capacity, refilled_at=now)
            .on_conflict_do_nothing(index_elements=["target"])
        )
        row = connection.execute(
            select(throttles.c.tokens, throttles.c.refilled_at)
            .where(throttles.c.target == target)
            .with_for_update()
        ).one()
        if limit.rate_per_s is None:
            return capacity
        elapsed_s = max(0.0, float((now - row.refilled_at).total_seconds()))
        tokens = min(capacity, float(row.tokens) + elapsed_s * limit.rate_per_s)
        connection.execute(
            update(throttles)
            .where(throttles.c.target == target)
            .values(tokens=tokens, refilled_at=now)
        )
        return tokens


def _mark_jobs_throttled(connection: Connection, which: ColumnElement[bool]) -> None:
    """Say on the held rows' jobs (still pending) why they wait: `switchboard jobs` shows it."""
    connection.execute(
        update(jobs)
        .where(
            which,
            jobs.c.status == st.PENDING,
            or_(jobs.c.latest_message.is_(None), jobs.c.latest_message != THROTTLED),
        )
        .values(latest_message=THROTTLED)
    )


def in_flight(
    connection: Connection, target: str, since: datetime, besides: Sequence[str] = ()
) -> int:
    """The target's rows in flight: admitted after `since`, not failed in the outbox, their job
    not ended (succeeded, skipped, failed, stopped: from the extractor's status updates or a
    poller), and not among `besides` (the rows being admitted now: a retried row is not
    counted twice)."""
    ended = exists().where(jobs.c.job_id == submissions.c.job_id, jobs.c.status.in_(st.TERMINAL))
    query = select(func.count()).where(
        submissions.c.extractor == target,
        submissions.c.admitted_at > since,
        submissions.c.status.in_([PENDING, SENT]),
        ~ended,
    )
    if besides:
        query = query.where(submissions.c.job_id.not_in(list(besides)))
    return int(connection.execute(query).scalar_one())


def throttled_counts(connection: Connection) -> dict[str, int]:
    """Pending rows held back by a throttle, per target (for `status`)."""
    query = (
        select(submissions.c.extractor, func.count())
        .where(submissions.c.status == PENDING, submissions.c.hold_reason == THROTTLED)
        .group_by(submissions.c.extractor)
    )
    return {target: int(count) for target, count in connection.execute(query)}
