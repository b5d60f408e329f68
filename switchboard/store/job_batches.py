"""Recording a whole batch of status updates in a few statements instead of several per update.

`record_update` reads the job, inserts one timeline row and updates the job for every update:
about five round trips each, which made status traffic cost more than the events it answers
(bench/pipeline.py --status-traffic). Here a batch loads its jobs in one SELECT, inserts its
timeline rows in one statement, updates each job it touched once, and queues its forwarded
copies in one statement, with the same outcome as `record_update` called update by update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from ..jobs import statuses as st
from ..jobs.views import JobView
from .job_records import Outcome, Update
from .job_tables import job_updates, jobs
from .statements import upsert


def find_jobs(
    connection: Connection, correlation_ids: Iterable[str | None], named: Iterable[str | None]
) -> tuple[dict[str, JobView], dict[str, JobView]]:
    """(jobs by our job id, jobs by Clowder's job id) for every id an update of the batch
    names, in at most two SELECTs (`find_job`'s lookups, for many updates at once)."""
    named_ids = {n for n in named if n}
    ours = {c for c in correlation_ids if c} | named_ids
    by_id: dict[str, JobView] = {}
    if ours:
        for row in connection.execute(select(jobs).where(jobs.c.job_id.in_(ours))).mappings():
            by_id[row["job_id"]] = JobView.from_row(row)
    by_clowder: dict[str, JobView] = {}
    missing = named_ids - set(by_id)
    if missing:
        query = select(jobs).where(jobs.c.clowder_job_id.in_(missing))
        for row in connection.execute(query).mappings():
            by_clowder.setdefault(row["clowder_job_id"], JobView.from_row(row))
    return by_id, by_clowder


def job_of(
    found: tuple[dict[str, JobView], dict[str, JobView]],
    correlation_id: str | None,
    named_job_id: str | None,
) -> JobView | None:
    """The job `find_job` would pick: by correlation id, else the named id, else Clowder's."""
    by_id, by_clowder = found
    for candidate in (correlation_id, named_job_id):
        if candidate and candidate in by_id:
            return by_id[candidate]
    return by_clowder.get(named_job_id) if named_job_id else None


def record_updates(
    connection: Connection, updates: Sequence[tuple[JobView, Update]], received_at: datetime
) -> list[Outcome]:
    """Record `updates` (each with its job, as loaded) in order; one Outcome per update, as
    `record_update` would have returned it. A key seen before (or twice here) is a duplicate;
    an update of a job that has ended is kept in its timeline without changing the job."""
    if not updates:
        return []
    fresh = _insert_timeline(connection, [(job.job_id, u) for job, u in updates], received_at)
    current: dict[str, JobView] = {}
    changed: set[str] = set()
    outcomes: list[Outcome] = []
    for loaded, update_ in updates:
        job = current.setdefault(loaded.job_id, loaded)
        if update_.key not in fresh:
            outcomes.append(Outcome(False, False, job))
            continue
        fresh.discard(update_.key)  # a second copy in this batch is a duplicate
        if st.is_terminal(job.status):
            outcomes.append(Outcome(True, False, job))
            continue
        job = _applied(job, update_)
        current[job.job_id] = job
        changed.add(job.job_id)
        outcomes.append(Outcome(True, True, job))
    ended = _write(connection, [current[job_id] for job_id in changed])
    if ended:  # ended by someone else meanwhile: as record_update, report the job as it is
        reread = find_jobs(connection, ended, ())[0]
        outcomes = [
            Outcome(o.recorded, False, reread.get(o.job.job_id, o.job))
            if o.applied and o.job is not None and o.job.job_id in ended
            else o
            for o in outcomes
        ]
    return outcomes


def _insert_timeline(
    connection: Connection, rows: Sequence[tuple[str, Update]], received_at: datetime
) -> set[str]:
    """Insert the timeline rows whose keys are new; the set of keys that went in."""
    unique: dict[str, dict[str, Any]] = {}
    for job_id, u in rows:
        unique.setdefault(
            u.key,
            {
                "update_key": u.key,
                "job_id": job_id,
                "at": u.at,
                "received_at": received_at,
                "status": u.status,
                "message": u.message,
                "source": u.source,
            },
        )
    insert = (
        upsert(connection.dialect.name, job_updates)
        .on_conflict_do_nothing(index_elements=["update_key"])
        .returning(job_updates.c.update_key)
    )
    return set(connection.execute(insert, list(unique.values())).scalars())


def _applied(job: JobView, u: Update) -> JobView:
    """`job` after `u`, as the UPDATE in `_write` leaves it."""
    changed: dict[str, Any] = {"status": u.status, "updated_at": u.at, "latest_message": u.message}
    if u.status not in (st.PENDING, st.SUBMITTED):
        changed["started_at"] = job.started_at or u.at
    if u.status == st.SUBMITTED:
        changed["sent_at"] = job.sent_at or u.at
    if st.is_terminal(u.status):
        changed["finished_at"] = u.at
    return dataclasses.replace(job, **changed)


def _write(connection: Connection, changed: Sequence[JobView]) -> set[str]:
    """Every job changed to its state after the batch, in one executemany (unless it has
    ended meanwhile); the ids it did not change (read back only when some were not)."""
    if not changed:
        return set()
    statement = (
        update(jobs)
        .where(
            jobs.c.job_id == bindparam("b_job_id"),
            # one `<>` per terminal status: an expanding NOT IN cannot be used in executemany
            *(jobs.c.status != status for status in sorted(st.TERMINAL)),
        )
        .values(
            status=bindparam("b_status"),
            updated_at=bindparam("b_updated_at"),
            latest_message=bindparam("b_latest_message"),
            started_at=func.coalesce(jobs.c.started_at, bindparam("b_started_at")),
            sent_at=func.coalesce(jobs.c.sent_at, bindparam("b_sent_at")),
            finished_at=bindparam("b_finished_at"),
        )
    )
    rows = [
        {
            "b_job_id": job.job_id,
            "b_status": job.status,
            "b_updated_at": job.updated_at,
            "b_latest_message": job.latest_message,
            "b_started_at": job.started_at,
            "b_sent_at": job.sent_at,
            "b_finished_at": job.finished_at,
        }
        for job in changed
    ]
    if connection.execute(statement, rows).rowcount == len(rows):
        return set()
    now = find_jobs(connection, [job.job_id for job in changed], ())[0]
    return {
        job.job_id
        for job in changed
        if job.job_id in now
        and (now[job.job_id].status, now[job.job_id].updated_at) != (job.status, job.updated_at)
    }
