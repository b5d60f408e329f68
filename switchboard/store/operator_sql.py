"""Operator actions on the outbox (retry, resubmit) and the log of who did what.

Each action is idempotent: retrying a row that is not failed changes nothing; resubmitting a
job makes the same new job id every time (it derives from the old one), so a second
resubmission of it finds that job already queued. Every action that changed something is
logged in `operator_actions`, and in the timeline of the jobs it touched (source
`operator`), in the same transaction as the change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from ..jobids import job_id
from ..jobs import statuses as st
from ..model import Submission
from .control_tables import OperatorActionRow
from .errors import store_errors
from .job_records import create_jobs, job_row, update_key
from .job_tables import job_updates, jobs
from .models import FAILED, PENDING
from .sql import SqlStore
from .statements import submissions, upsert

actions = cast(Table, OperatorActionRow.__table__)
RESUBMIT_GENERATION = "resubmit-of:"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did to one job: `changed` False means it was a no-op (and why)."""

    job_id: str
    changed: bool
    note: str
    new_job_id: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One logged operator action."""

    at: datetime
    who: str
    action: str
    subject: str
    detail: dict[str, Any]


def log_action(
    connection: Connection, now: datetime, who: str, action: str, subject: str, **detail: Any
) -> None:
    """Log one operator action (in the caller's transaction)."""
    connection.execute(
        insert(actions).values(
            at=now, who=who, action=action, subject=subject, detail=json.dumps(detail)
        )
    )


def add_to_timeline(
    connection: Connection, job: str, status: str, message: str, now: datetime
) -> None:
    """An operator's row in a job's timeline (the job's status is set by the caller)."""
    connection.execute(
        upsert(connection.dialect.name, job_updates).on_conflict_do_nothing(
            index_elements=["update_key"]
        ),
        {
            "update_key": update_key(st.SOURCE_OPERATOR, job, message, now.isoformat()),
            "job_id": job,
            "at": now,
            "received_at": now,
            "status": status,
            "message": message,
            "source": st.SOURCE_OPERATOR,
        },
    )


def actions_for(store: SqlStore, subject: str) -> list[Action]:
    """The actions logged about one job or message id, oldest first."""
    query = select(actions).where(actions.c.subject == subject).order_by(actions.c.id)
    with store_errors("database"), store.engine.connect() as connection:
        return [
            Action(r.at, r.who, r.action, r.subject, json.loads(r.detail))
            for r in connection.execute(query)
        ]


def failed_job_ids(store: SqlStore, target: str | None = None) -> list[str]:
    """Every failed row's job id (of `target` only, if given), oldest first."""
    query = select(submissions.c.job_id).where(submissions.c.status == FAILED)
    if target is not None:
        query = query.where(submissions.c.extractor == target)
    query = query.order_by(submissions.c.created_at, submissions.c.job_id)
    with store_errors("database"), store.engine.connect() as connection:
        return list(connection.execute(query).scalars())


def retry(store: SqlStore, job_ids: Sequence[str], who: str) -> list[Outcome]:
    """Send failed rows again: pending, due now, attempts from 0; others are left alone."""
    outcomes = []
    with store_errors("database"), store.engine.begin() as connection:
        now = store.clock()
        for jid in dict.fromkeys(job_ids):
            found = connection.execute(
                select(submissions.c.status, submissions.c.last_error)
                .where(submissions.c.job_id == jid)
                .with_for_update()
            ).one_or_none()
            if found is None:
                outcomes.append(Outcome(jid, False, "no such job"))
                continue
            if found.status != FAILED:
                outcomes.append(Outcome(jid, False, f"not failed ({found.status}): left alone"))
                continue
            connection.execute(
                update(submissions)
                .where(submissions.c.job_id == jid, submissions.c.status == FAILED)
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    claim_token=None,
                    claimed_until=None,
                    hold_reason=None,
                    admitted_at=None,
                )
            )
            log_action(connection, now, who, "retry", jid, last_error=found.last_error)
            note = f"retry by {who}"
            connection.execute(
                update(jobs)
                .where(jobs.c.job_id == jid)
                .values(status=st.PENDING, finished_at=None, updated_at=now, latest_message=note)
            )
            add_to_timeline(connection, jid, st.PENDING, note, now)
            outcomes.append(Outcome(jid, True, "pending again"))
    return outcomes


def resubmit(store: SqlStore, old_job_id: str, who: str) -> Outcome:
    """Queue a new generation of a job: same rule, target, resource and message, a new job id
    derived from the old one, linked to it through `resubmit_of`."""
    s = submissions
    with store_errors("database"), store.engine.begin() as connection:
        now = store.clock()
        old = connection.execute(select(s).where(s.c.job_id == old_job_id)).one_or_none()
        if old is None:
            return Outcome(old_job_id, False, "no such job")
        new_id = job_id(
            old.rule,
            old.extractor,
            old.resource_type,
            old.resource_id,
            RESUBMIT_GENERATION + old_job_id,
        )
        exists = connection.execute(select(s.c.status).where(s.c.job_id == new_id)).first()
        if exists is not None:
            note = f"already resubmitted as {new_id} ({exists.status}); resubmit that to go again"
            return Outcome(old_job_id, False, note, new_id)
        body = {**(old.body or {}), "jobid": new_id, "job_id": new_id}
        properties = {**(old.properties or {}), "message_id": new_id}
        connection.execute(
            insert(s).values(
                job_id=new_id,
                rule=old.rule,
                extractor=old.extractor,
                via=old.via,
                resource_type=old.resource_type,
                resource_id=old.resource_id,
                parameters=old.parameters,
                event_message_id=old.event_message_id,
                body=body,
                properties=properties,
                options=old.options,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                resubmit_of=old_job_id,
            )
        )
        submission = Submission(
            new_id,
            old.rule,
            old.extractor,
            old.resource_type,
            old.resource_id,
            old.via,
            old.parameters,
            old.event_message_id,
            old.options,
        )
        create_jobs(connection, [job_row(submission, body, properties, now)])
        log_action(connection, now, who, "resubmit", old_job_id, new_job_id=new_id)
        log_action(connection, now, who, "resubmitted-from", new_id, old_job_id=old_job_id)
        old_status = connection.execute(
            select(jobs.c.status).where(jobs.c.job_id == old_job_id)
        ).scalar_one_or_none()
        if old_status is not None:
            add_to_timeline(
                connection, old_job_id, old_status, f"resubmitted as {new_id} by {who}", now
            )
        add_to_timeline(
            connection, new_id, st.PENDING, f"resubmission of {old_job_id} by {who}", now
        )
    return Outcome(old_job_id, True, f"resubmitted as {new_id}", new_id)


def log_redrive(store: SqlStore, who: str, queue: str, message_id: str, reason: str) -> None:
    """Log that a dead letter went back to its input queue (its own transaction)."""
    with store_errors("database"), store.engine.begin() as connection:
        log_action(
            connection, store.clock(), who, "redrive", message_id, queue=queue, reason=reason
        )
