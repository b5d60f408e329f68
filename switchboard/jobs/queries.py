"""Reading jobs: filtered lists newest first, one job's timeline, orphans, counts per target."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ..store.job_tables import job_updates, jobs, orphan_updates
from . import statuses as st
from .views import JobView, OrphanView, TimelineEntry


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What `switchboard jobs` asks for; None means any."""

    rule: str | None = None
    target: str | None = None
    dataset_id: str | None = None
    status: str | None = None
    since: datetime | None = None  # created at or after
    limit: int = 50


def list_jobs(connection: Connection, which: JobFilter) -> list[JobView]:
    query = select(jobs)
    if which.rule is not None:
        query = query.where(jobs.c.rule == which.rule)
    if which.target is not None:
        query = query.where(jobs.c.target == which.target)
    if which.dataset_id is not None:
        query = query.where(jobs.c.dataset_id == which.dataset_id)
    if which.status is not None:
        query = query.where(jobs.c.status == which.status)
    if which.since is not None:
        query = query.where(jobs.c.created_at >= which.since)
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.job_id.desc()).limit(which.limit)
    return [JobView.from_row(row) for row in connection.execute(query).mappings()]


def get_job(connection: Connection, job_id: str) -> JobView | None:
    row = connection.execute(select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
    return None if row is None else JobView.from_row(row)


def timeline(connection: Connection, job_id: str) -> list[TimelineEntry]:
    """The job's updates in the order they happened (their own time, then arrival)."""
    query = (
        select(
            job_updates.c.at,
            job_updates.c.received_at,
            job_updates.c.status,
            job_updates.c.message,
            job_updates.c.source,
        )
        .where(job_updates.c.job_id == job_id)
        .order_by(job_updates.c.at, job_updates.c.id)
    )
    return [TimelineEntry(*row) for row in connection.execute(query)]


def orphans(connection: Connection, limit: int = 50) -> list[OrphanView]:
    """The latest updates that named no job we know, newest first."""
    query = (
        select(
            orphan_updates.c.correlation_id,
            orphan_updates.c.named_job_id,
            orphan_updates.c.at,
            orphan_updates.c.received_at,
            orphan_updates.c.status,
            orphan_updates.c.message,
            orphan_updates.c.source,
            orphan_updates.c.body,
        )
        .order_by(orphan_updates.c.received_at.desc(), orphan_updates.c.id.desc())
        .limit(limit)
    )
    return [OrphanView(*row) for row in connection.execute(query)]


def counts(connection: Connection) -> dict[tuple[str, str], int]:
    """(target, status) -> number of jobs."""
    query = select(jobs.c.target, jobs.c.status, func.count()).group_by(
        jobs.c.target, jobs.c.status
    )
    return {(target, status): int(n) for target, status, n in connection.execute(query)}


def non_terminal_jobs(
    connection: Connection, via: str, *, limit: int = 500, after: str | None = None
) -> list[JobView]:
    """Jobs of `via` that have not ended (for a poller), in job id order, `limit` at a time
    after job id `after`. Pending jobs (still in the outbox) are left out."""
    query = select(jobs).where(
        jobs.c.via == via,
        jobs.c.status.not_in([*st.TERMINAL, st.PENDING]),
    )
    if after is not None:
        query = query.where(jobs.c.job_id > after)
    query = query.order_by(jobs.c.job_id).limit(limit)
    return [JobView.from_row(row) for row in connection.execute(query).mappings()]
