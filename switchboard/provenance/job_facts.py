"""What provenance needs of one job: its submission, status, start, end and timeline.

Status and times come from the job model and its timeline (`switchboard.jobs`): `started_at`
is when the job reported its start (else when the broker, Clowder or Ray took it), `ended_at`
when it reached a terminal status. The outbox row names the event whose decision caused the
job; a job whose outbox row was pruned keeps its facts but no longer names that event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..jobs import statuses
from ..jobs.queries import get_job, timeline
from ..store.statements import submissions

TERMINAL = statuses.TERMINAL


@dataclass(frozen=True, slots=True)
class JobFacts:
    """One job as provenance shows it (FlowCept's task record fields: status, started_at,
    ended_at), and where the facts came from (`source`: the job timeline or the outbox)."""

    job_id: str
    rule: str
    extractor: str
    via: str
    resource_type: str
    resource_id: str
    event_message_id: str | None
    manifest_id: str | None
    status: str
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    source: str = "jobs"
    message: str | None = None
    timeline: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def job_facts(connection: Connection, job_id: str) -> JobFacts | None:
    """The job's facts, or None if neither the job model nor the outbox knows it."""
    row = connection.execute(select(submissions).where(submissions.c.job_id == job_id)).first()
    job = get_job(connection, job_id)
    manifest_id = (row.parameters or {}).get("manifest_id") if row is not None else None
    event = row.event_message_id if row is not None else None
    if job is None:
        if row is None:
            return None
        return JobFacts(  # a row older than the job model (or its job pruned): the outbox's word
            job_id=row.job_id,
            rule=row.rule,
            extractor=row.extractor,
            via=row.via,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            event_message_id=event,
            manifest_id=manifest_id,
            status=row.status,
            created_at=row.created_at,
            started_at=row.sent_at,
            ended_at=None,
            source="outbox",
        )
    return JobFacts(
        job_id=job.job_id,
        rule=job.rule,
        extractor=job.target,
        via=job.via,
        resource_type=job.resource_type,
        resource_id=job.resource_id,
        event_message_id=event,
        manifest_id=manifest_id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at or job.sent_at,
        ended_at=job.finished_at,
        message=job.latest_message,
        timeline=tuple(entry.as_json() for entry in timeline(connection, job_id)),
    )
