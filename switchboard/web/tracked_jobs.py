"""Jobs as job tracking records them (migration 0006): the jobs table and each job's timeline.

Each job also carries its outbox row's `attempts` and `last_attempt_error` (None once retention
pruned the row): a submission waiting for a retry says why its last attempt failed, which the
job's own `latest_message` does not until it fails for good.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from ..jobs.views import JobView, TimelineEntry
from ..store.job_tables import job_updates, jobs
from ..store.statements import submissions
from .job_filters import JobFilter
from .queries import Page


class TrackedJobs:
    """`JobsReader` over the `jobs` and `job_updates` tables."""

    source = "jobs"

    def jobs(
        self, connection: Connection, where: JobFilter, page: Page, now: datetime
    ) -> tuple[list[dict[str, Any]], int]:
        total = connection.execute(
            _filtered(select(func.count()).select_from(jobs), where)
        ).scalar_one()
        query = (
            _filtered(_with_attempts(), where)
            .order_by(jobs.c.created_at.desc(), jobs.c.job_id.desc())
            .offset(page.offset)
            .limit(page.limit)
        )
        rows = connection.execute(query).mappings()
        return [_job(row, now) for row in rows], total

    def job(self, connection: Connection, job_id: str, now: datetime) -> dict[str, Any] | None:
        query = _with_attempts().where(jobs.c.job_id == job_id)
        row = connection.execute(query).mappings().first()
        if row is None:
            return None
        timeline = self.timelines(connection, [job_id]).get(job_id, [])
        return {**_job(row, now), "timeline": timeline}

    def timelines(
        self, connection: Connection, job_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each job's updates in the order they happened (their own time, then arrival)."""
        if not job_ids:
            return {}
        u = job_updates
        query = (
            select(u.c.job_id, u.c.at, u.c.received_at, u.c.status, u.c.message, u.c.source)
            .where(u.c.job_id.in_(job_ids))
            .order_by(u.c.job_id, u.c.at, u.c.id)
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for job_id, *entry in connection.execute(query):
            found.setdefault(job_id, []).append(TimelineEntry(*entry).as_json())
        return found

    def targets(self, connection: Connection) -> list[str]:
        query = select(jobs.c.target).distinct().order_by(jobs.c.target)
        return [target for (target,) in connection.execute(query)]


def _with_attempts() -> Select[Any]:
    s = submissions
    return select(
        jobs, s.c.attempts.label("attempts"), s.c.last_error.label("last_attempt_error")
    ).select_from(jobs.outerjoin(s, s.c.job_id == jobs.c.job_id))


def _job(row: Any, now: datetime) -> dict[str, Any]:
    return {
        **JobView.from_row(row).as_json(now),
        "attempts": row["attempts"],
        "last_attempt_error": row["last_attempt_error"],
    }


def _filtered(query: Select[Any], where: JobFilter) -> Select[Any]:
    if where.target:
        query = query.where(jobs.c.target == where.target)
    if where.rule:
        query = query.where(jobs.c.rule == where.rule)
    if where.status:
        query = query.where(jobs.c.status == where.status)
    if where.dataset:
        query = query.where(jobs.c.dataset_id == where.dataset)
    return query
