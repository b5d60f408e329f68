"""Jobs as the outbox knows them (pending, submitted, failed): the jobs table without job tracking.

Used while the database has no jobs tables; each row is shaped like a tracked job (the keys of
`switchboard jobs --json`) so the page and the API do not care which one answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select

from ..store.models import FAILED, PENDING, SENT
from ..store.statements import submissions
from .job_filters import JobFilter
from .queries import Page, iso

STATUS_OF_ROW = {PENDING: "pending", SENT: "submitted", FAILED: "failed"}
ROW_OF_STATUS = {status: row for row, status in STATUS_OF_ROW.items()}
_COLUMNS = (
    submissions.c.job_id,
    submissions.c.rule,
    submissions.c.extractor,
    submissions.c.via,
    submissions.c.resource_type,
    submissions.c.resource_id,
    submissions.c.status,
    submissions.c.attempts,
    submissions.c.last_error,
    submissions.c.created_at,
    submissions.c.sent_at,
    submissions.c.next_attempt_at,
    submissions.c.body["datasetId"].as_string().label("dataset_id"),
)


class OutboxJobs:
    """`JobsReader` over the `submissions` table."""

    source = "outbox"

    def jobs(
        self, connection: Connection, where: JobFilter, page: Page, now: datetime
    ) -> tuple[list[dict[str, Any]], int]:
        query = _filtered(select(*_COLUMNS), where)
        total = connection.execute(
            _filtered(select(func.count()).select_from(submissions), where)
        ).scalar_one()
        rows = connection.execute(
            query.order_by(submissions.c.created_at.desc(), submissions.c.job_id)
            .offset(page.offset)
            .limit(page.limit)
        )
        return [_job(row, now) for row in rows], total

    def job(self, connection: Connection, job_id: str, now: datetime) -> dict[str, Any] | None:
        row = connection.execute(
            select(*_COLUMNS).where(submissions.c.job_id == job_id)
        ).one_or_none()
        if row is None:
            return None
        return {**_job(row, now), "timeline": _timeline(row)}

    def timelines(
        self, connection: Connection, job_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        if not job_ids:
            return {}
        rows = connection.execute(select(*_COLUMNS).where(submissions.c.job_id.in_(job_ids)))
        return {row.job_id: _timeline(row) for row in rows}

    def targets(self, connection: Connection) -> list[str]:
        query = select(submissions.c.extractor).distinct().order_by(submissions.c.extractor)
        return [target for (target,) in connection.execute(query)]


def _filtered(query: Select[Any], where: JobFilter) -> Select[Any]:
    s = submissions
    if where.target:
        query = query.where(s.c.extractor == where.target)
    if where.rule:
        query = query.where(s.c.rule == where.rule)
    if where.status:
        query = query.where(s.c.status == ROW_OF_STATUS.get(where.status, where.status))
    if where.dataset:
        dataset = where.dataset
        query = query.where(
            or_(
                s.c.body["datasetId"].as_string() == dataset,
                (s.c.resource_type == "dataset") & (s.c.resource_id == dataset),
            )
        )
    return query


def _job(row: Any, now: datetime) -> dict[str, Any]:
    """The row as a job. A failed row does not keep when its last attempt was: its update
    time and elapsed time are unknown (None), not guessed."""
    status = STATUS_OF_ROW.get(row.status, row.status)
    updated = {SENT: row.sent_at, PENDING: row.created_at}.get(row.status)
    finished = row.sent_at if row.status == SENT else None
    elapsed = None if row.status == FAILED else (finished or now) - row.created_at
    return {
        "job_id": row.job_id,
        "rule": row.rule,
        "target": row.extractor,
        "via": row.via,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "dataset_id": row.dataset_id
        or (row.resource_id if row.resource_type == "dataset" else None),
        "clowder_job_id": None,
        "ray_submission_id": row.job_id if row.via == "ray" and row.status == SENT else None,
        "status": status,
        "latest_message": row.last_error,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "started_at": None,
        "updated_at": iso(updated),
        "finished_at": iso(finished),
        "elapsed_s": None if elapsed is None else round(max(0.0, elapsed.total_seconds()), 3),
    }


def _timeline(row: Any) -> list[dict[str, Any]]:
    """What the outbox row tells: queued, the last failed attempt (if any), sent or given up."""
    queued = f"queued by rule {row.rule} for {row.resource_type} {row.resource_id}"
    entries = [_entry(row.created_at, "pending", queued)]
    if row.status == SENT:
        entries.append(
            _entry(row.sent_at, "submitted", f"taken by {row.via} after {row.attempts} attempt(s)")
        )
    elif row.status == FAILED:
        reason = f"given up after {row.attempts} attempt(s): {row.last_error}"
        entries.append(_entry(None, "failed", reason))  # when is not kept
    elif row.attempts and row.last_error:
        retry = f"attempt {row.attempts} failed, retried at the time shown: {row.last_error}"
        entries.append(_entry(row.next_attempt_at, "pending", retry))
    return entries


def _entry(at: datetime | None, status: str, message: str) -> dict[str, Any]:
    return {
        "at": iso(at),
        "received_at": iso(at),
        "status": status,
        "message": message,
        "source": "relay",
    }
