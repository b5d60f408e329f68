"""Writing jobs: created with their outbox rows, marked by the relay, updated from any source.

Every function runs on the caller's connection, inside the caller's transaction, so a job
changes together with whatever caused the change (the outbox row, the acked status message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from ..jobs import statuses as st
from ..jobs.tracking import original_reply
from ..jobs.views import JobView
from ..model import Submission
from .array_insert import array_insert
from .job_tables import job_updates, jobs, orphan_updates
from .statements import upsert

UNTRACKED_VIAS = frozenset({"status-relay"})  # outbox rows that are forwarded updates, not jobs


def update_key(*parts: object) -> str:
    """The key that makes an update recorded once however often it arrives (64 hex chars)."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Update:
    """One status update of a job, from `source` (see `statuses.SOURCES`), at its own time."""

    key: str  # `update_key(...)` of what identifies it at its source
    status: str  # one of statuses.STATUSES
    at: datetime
    message: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What recording an update did: `recorded` False for a duplicate (nothing changed);
    `applied` False when the job was already terminal; `job` as it is now."""

    recorded: bool
    applied: bool
    job: JobView | None

    @property
    def finished(self) -> bool:
        """This update ended the job."""
        return self.applied and self.job is not None and st.is_terminal(self.job.status)


def job_row(
    submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The pending job of a submission just queued in the outbox."""
    reply_to, correlation_id = original_reply(properties)
    dataset = body.get("datasetId")
    if submission.resource_type == "dataset":
        dataset = submission.resource_id
    return {
        "job_id": submission.job_id,
        "rule": submission.rule,
        "target": submission.extractor,
        "via": submission.via,
        "resource_type": submission.resource_type,
        "resource_id": submission.resource_id,
        "dataset_id": dataset if isinstance(dataset, str) and dataset else None,
        "clowder_job_id": None,
        # Ray's submission id is our job id (sinks/ray_jobs.py submits it so: idempotent)
        "ray_submission_id": submission.job_id if submission.via == "ray" else None,
        "reply_to": reply_to,
        "correlation_id": correlation_id,
        "status": st.PENDING,
        "latest_message": None,
        "created_at": now,
        "sent_at": None,
        "started_at": None,
        "updated_at": now,
        "finished_at": None,
    }


def tracked(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The `job_row`s that are jobs (not forwarded status updates)."""
    return [row for row in rows if row["via"] not in UNTRACKED_VIAS]


def create_jobs(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert pending jobs (`job_row`s); a job id already there is left as it is."""
    jobs_only = tracked(rows)
    if jobs_only and connection.dialect.name == "postgresql":
        array_insert(connection, jobs, jobs_only, conflict=["job_id"])
    elif jobs_only:
        insert = upsert(connection.dialect.name, jobs).on_conflict_do_nothing(
            index_elements=["job_id"]
        )
        connection.execute(insert, list(jobs_only))


def mark_submitted(
    connection: Connection,
    job_ids: Iterable[str],
    now: datetime,
    clowder_job_ids: Mapping[str, str] | None = None,
) -> None:
    """The relay handed these jobs over: `sent_at` (once), `submitted` if still pending, a
    relay row in each timeline, and Clowder's job id of a REST submission."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return
    if connection.dialect.name == "postgresql":
        known = _mark_submitted_in_one(connection, ids, now)
    else:
        connection.execute(
            update(jobs).where(jobs.c.job_id.in_(ids), jobs.c.sent_at.is_(None)).values(sent_at=now)
        )
        connection.execute(
            update(jobs)
            .where(jobs.c.job_id.in_(ids), jobs.c.status == st.PENDING)
            .values(status=st.SUBMITTED, updated_at=now)
        )
        known = set(
            connection.execute(select(jobs.c.job_id).where(jobs.c.job_id.in_(ids))).scalars()
        )
        rows = [_relay_row(job_id, st.SUBMITTED, now, None) for job_id in ids if job_id in known]
        if rows:
            _insert_timeline(connection, rows)
    answers = [
        {"b_job_id": job_id, "b_clowder": clowder}
        for job_id, clowder in (clowder_job_ids or {}).items()
        if clowder and job_id in known
    ]
    if answers:
        connection.execute(
            update(jobs)
            .where(jobs.c.job_id == bindparam("b_job_id"))
            .values(clowder_job_id=bindparam("b_clowder")),
            answers,
        )


# The relay's three job writes of a send as one statement (one round trip, one commit on its
# autocommit connection): sent_at once, pending -> submitted, a relay row in each timeline.
_MARK_SUBMITTED = """
WITH marked AS (
    UPDATE jobs
    SET sent_at = coalesce(sent_at, %(now)s),
        status = CASE WHEN status = %(pending)s THEN %(submitted)s ELSE status END,
        updated_at = CASE WHEN status = %(pending)s THEN %(now)s ELSE updated_at END
    WHERE job_id = ANY(%(ids)b::varchar[])
    RETURNING job_id
), timeline AS (
    INSERT INTO job_updates (update_key, job_id, at, received_at, status, message, source)
    SELECT k.update_key, k.job_id, %(now)s, %(now)s, %(submitted)s, NULL, %(source)s
    FROM unnest(%(ids)b::varchar[], %(keys)b::varchar[]) WITH ORDINALITY
        AS k(job_id, update_key, ordinal)
    JOIN marked USING (job_id)
    ORDER BY k.ordinal
    ON CONFLICT (update_key) DO NOTHING
)
SELECT job_id FROM marked
"""


def _mark_submitted_in_one(connection: Connection, ids: list[str], now: datetime) -> set[str]:
    """`mark_submitted`'s job writes on PostgreSQL in one statement; the ids of known jobs."""
    parameters = {
        "ids": ids,
        "keys": [update_key("relay", job_id, st.SUBMITTED) for job_id in ids],
        "now": now,
        "pending": st.PENDING,
        "submitted": st.SUBMITTED,
        "source": st.SOURCE_RELAY,
    }
    return set(connection.exec_driver_sql(_MARK_SUBMITTED, parameters).scalars())


def mark_failed(connection: Connection, job_id: str, error: str, now: datetime) -> Outcome:
    """The outbox gave up on this job's submission: the job failed (unless already ended)."""
    update_ = Update(update_key("relay", job_id, st.FAILED), st.FAILED, now, error, st.SOURCE_RELAY)
    return record_update(connection, job_id, update_, now)


def record_update(
    connection: Connection,
    job_id: str,
    update_: Update,
    received_at: datetime,
    *,
    job: JobView | None = None,
) -> Outcome:
    """Add `update_` to the job's timeline and apply it unless the job has ended.

    A duplicate (its key already recorded) changes nothing. An unknown `job_id` records
    nothing either: call `record_orphan` for updates naming no job. `job`: the job as just
    read in this transaction (saves reading it again).
    """
    if job is None or job.job_id != job_id:
        job = find_job(connection, job_id=job_id)
    if job is None:
        return Outcome(False, False, None)
    row = {
        "update_key": update_.key,
        "job_id": job_id,
        "at": update_.at,
        "received_at": received_at,
        "status": update_.status,
        "message": update_.message,
        "source": update_.source,
    }
    if not _insert_timeline(connection, [row]):
        return Outcome(False, False, job)
    if st.is_terminal(job.status):
        return Outcome(True, False, job)
    values: dict[str, Any] = {
        "status": update_.status,
        "updated_at": update_.at,
        "latest_message": update_.message,
    }
    if update_.status not in (st.PENDING, st.SUBMITTED):
        values["started_at"] = func.coalesce(jobs.c.started_at, update_.at)
    if update_.status == st.SUBMITTED:
        values["sent_at"] = func.coalesce(jobs.c.sent_at, update_.at)
    if st.is_terminal(update_.status):
        values["finished_at"] = update_.at
    statement = (
        update(jobs)
        .where(jobs.c.job_id == job_id, jobs.c.status.not_in(list(st.TERMINAL)))
        .values(**values)
        .returning(*jobs.c)
    )
    changed = connection.execute(statement).mappings().first()
    if changed is None:  # ended concurrently
        return Outcome(True, False, find_job(connection, job_id=job_id))
    return Outcome(True, True, JobView.from_row(changed))


def record_orphan(
    connection: Connection,
    update_: Update,
    received_at: datetime,
    *,
    correlation_id: str | None,
    named_job_id: str | None,
    body: Mapping[str, Any],
) -> bool:
    """Keep an update that names no job we know; False if it was kept before (a duplicate)."""
    insert = (
        upsert(connection.dialect.name, orphan_updates)
        .on_conflict_do_nothing(index_elements=["update_key"])
        .returning(orphan_updates.c.id)
    )
    row = {
        "update_key": update_.key,
        "correlation_id": correlation_id,
        "named_job_id": named_job_id,
        "at": update_.at,
        "received_at": received_at,
        "status": update_.status,
        "message": update_.message,
        "source": update_.source,
        "body": dict(body),
    }
    return connection.execute(insert, row).first() is not None


def find_job(
    connection: Connection,
    *,
    job_id: str | None = None,
    correlation_id: str | None = None,
    named_job_id: str | None = None,
) -> JobView | None:
    """The job an update belongs to: by `job_id`, else by our correlation id (our job id),
    else by the job id its body names (ours, or Clowder's for a REST job); None if unknown."""
    for candidate in (job_id, correlation_id, named_job_id):
        if candidate:
            row = connection.execute(select(jobs).where(jobs.c.job_id == candidate)).mappings()
            found = row.first()
            if found is not None:
                return JobView.from_row(found)
    if named_job_id:
        query = select(jobs).where(jobs.c.clowder_job_id == named_job_id).limit(1)
        found = connection.execute(query).mappings().first()
        if found is not None:
            return JobView.from_row(found)
    return None


def _relay_row(job_id: str, status: str, now: datetime, message: str | None) -> dict[str, Any]:
    return {
        "update_key": update_key("relay", job_id, status),
        "job_id": job_id,
        "at": now,
        "received_at": now,
        "status": status,
        "message": message,
        "source": st.SOURCE_RELAY,
    }


def _insert_timeline(connection: Connection, rows: list[dict[str, Any]]) -> bool:
    """Insert timeline rows, skipping keys already there; True if any went in."""
    if connection.dialect.name == "postgresql":
        added = array_insert(connection, job_updates, rows, conflict=["update_key"], returning="id")
        return bool(added)
    insert = (
        upsert(connection.dialect.name, job_updates)
        .on_conflict_do_nothing(index_elements=["update_key"])
        .returning(job_updates.c.id)
    )
    return bool(connection.execute(insert, rows).all())
