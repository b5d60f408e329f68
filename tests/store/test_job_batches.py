"""A batch of status updates recorded at once ends exactly as recording them one by one does,
on SQLite and PostgreSQL (duplicates, updates after the end, several jobs and updates each)."""

from __future__ import annotations

from datetime import timedelta

from switchboard.jobs import statuses as st
from switchboard.jobs.store import JobStore
from switchboard.jobs.tracking import redirected
from switchboard.jobs.views import JobView
from switchboard.store.job_batches import find_jobs, job_of, record_updates
from switchboard.store.job_records import Update, record_update, update_key
from switchboard.store.sql import SqlStore
from tests.conftest import START
from tests.store.helpers import submission

ORIGINAL = {"reply_to": "clowder.abc", "correlation_id": "corr-1"}


def _queue(store: SqlStore, *job_ids: str) -> None:
    with store.unit_of_work() as uow:
        for job_id in job_ids:
            properties = redirected({**ORIGINAL, "message_id": job_id}, "sb.status", job_id)
            body = {"datasetId": "ds-1", "job_id": job_id}
            uow.add_submission(submission(job_id), body, properties)


def _update(job_id: str, status: str, seconds: float) -> Update:
    at = START + timedelta(seconds=seconds)
    return Update(update_key(job_id, status, seconds), status, at, f"{status} msg", "extractor")


def _job(store: SqlStore, job_id: str) -> JobView:
    job = JobStore(store.engine, store.clock).job(job_id)
    assert job is not None
    return job


def _batch(store: SqlStore, pairs: list[tuple[str, Update]]):
    with store.engine.begin() as connection:
        found = find_jobs(connection, [job_id for job_id, _ in pairs], ())
        loaded = [(job_of(found, job_id, None), u) for job_id, u in pairs]
        assert all(job is not None for job, _ in loaded)
        return record_updates(connection, loaded, START)  # type: ignore[arg-type]


def _one_by_one(store: SqlStore, pairs: list[tuple[str, Update]]):
    outcomes = []
    for job_id, u in pairs:
        with store.engine.begin() as connection:
            outcomes.append(record_update(connection, job_id, u, START))
    return outcomes


def sequence(a: str, b: str) -> list[tuple[str, Update]]:
    """Two jobs' updates interleaved, with a duplicate, a skip then done, and a late one."""
    return [
        (a, _update(a, st.STARTED, 1)),
        (b, _update(b, st.STARTED, 1)),
        (a, _update(a, st.PROCESSING, 2)),
        (b, _update(b, st.SKIPPED, 2)),
        (a, _update(a, st.PROCESSING, 2)),  # the same update again: a duplicate
        (b, _update(b, st.SUCCEEDED, 3)),  # pyclowder's done after skip: kept, not applied
        (a, _update(a, st.SUCCEEDED, 4)),
        (a, _update(a, st.PROCESSING, 5)),  # late
    ]


def test_a_batch_ends_every_job_as_one_update_at_a_time_would(store: SqlStore) -> None:
    _queue(store, "job-a", "job-b", "job-c", "job-d")

    batched = _batch(store, sequence("job-a", "job-b"))
    single = _one_by_one(store, sequence("job-c", "job-d"))

    assert [(o.recorded, o.applied) for o in batched] == [(o.recorded, o.applied) for o in single]
    assert [(o.recorded, o.applied) for o in batched][4:6] == [(False, False), (True, False)]
    for mine, theirs in (("job-a", "job-c"), ("job-b", "job-d")):
        for field in ("status", "latest_message", "started_at", "updated_at", "finished_at"):
            assert getattr(_job(store, mine), field) == getattr(_job(store, theirs), field), field
    assert _job(store, "job-a").status == st.SUCCEEDED
    assert _job(store, "job-b").status == st.SKIPPED
    assert _job(store, "job-a").started_at == START + timedelta(seconds=1)
    with store.engine.begin() as connection:
        rows = connection.exec_driver_sql(
            "SELECT job_id, count(*) FROM job_updates GROUP BY job_id"
        )
        counts = dict(rows.all())
    assert (counts["job-a"], counts["job-b"]) == (counts["job-c"], counts["job-d"]) == (4, 3)


def test_a_batch_repeated_records_nothing_the_second_time(store: SqlStore) -> None:
    _queue(store, "job-a", "job-b")
    _batch(store, sequence("job-a", "job-b"))
    before = {job_id: _job(store, job_id) for job_id in ("job-a", "job-b")}

    again = _batch(store, sequence("job-a", "job-b"))

    assert not any(o.recorded for o in again)
    assert {job_id: _job(store, job_id) for job_id in before} == before


def test_jobs_are_found_by_correlation_id_then_the_job_id_the_body_names(store: SqlStore) -> None:
    _queue(store, "job-a")
    with store.engine.begin() as connection:
        found = find_jobs(connection, [None, "nobody"], ["job-a", None])

    assert job_of(found, None, "job-a") is not None
    assert job_of(found, "nobody", "job-a") is not None  # a retried message lost its correlation
    assert job_of(found, "nobody", None) is None
