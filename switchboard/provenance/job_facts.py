"""What provenance needs of one job: its submission, status, start and end.

From the outbox row (status pending / sent / failed; "started" = when the broker, Clowder or
Ray took it, the row's `sent_at`). The outbox row's event names the decision that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..store.statements import submissions


@dataclass(frozen=True, slots=True)
class JobFacts:
    """One job as provenance shows it (FlowCept's task record fields: status, started_at,
    ended_at), and where the facts came from (`source`)."""

    job_id: str
    rule: str
    extractor: str
    via: str
    resource_type: str
    resource_id: str
    event_message_id: str
    manifest_id: str | None
    status: str
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    source: str = "outbox"
    timeline: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def job_facts(connection: Connection, job_id: str) -> JobFacts | None:
    """The job's facts, or None if the outbox no longer has it (pruned)."""
    row = connection.execute(select(submissions).where(submissions.c.job_id == job_id)).first()
    if row is None:
        return None
    parameters = row.parameters or {}
    return JobFacts(
        job_id=row.job_id,
        rule=row.rule,
        extractor=row.extractor,
        via=row.via,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        event_message_id=row.event_message_id,
        manifest_id=parameters.get("manifest_id"),
        status=row.status,
        created_at=row.created_at,
        started_at=row.sent_at,
        ended_at=row.next_attempt_at if row.status == "failed" else None,
    )


def jobs_of_events(connection: Connection, message_ids: list[str]) -> list[str]:
    """Job ids the outbox holds for these events."""
    if not message_ids:
        return []
    query = select(submissions.c.job_id).where(submissions.c.event_message_id.in_(message_ids))
    return list(connection.execute(query.order_by(submissions.c.created_at)).scalars())
