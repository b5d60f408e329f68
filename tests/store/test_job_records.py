"""Job records on SQLite and PostgreSQL: created with the outbox row, marked by the relay,
updated by status updates (terminal never overridden, duplicates ignored, orphans kept)."""

from __future__ import annotations

from datetime import timedelta

from switchboard.jobs import statuses as st
from switchboard.jobs.store import JobStore
from switchboard.jobs.tracking import redirected
from switchboard.store.job_records import Update, record_orphan, record_update, update_key
from switchboard.store.sql import SqlStore
from tests.conftest import START, FakeClock
from tests.store.helpers import submission

BODY = {"datasetId": "ds-1", "job_id": "job-1"}
ORIGINAL = {"message_id": "job-1", "reply_to": "clowder.abc", "correlation_id": "corr-1"}


def _queue(store: SqlStore, job_id: str = "job-1", via: str = "amqp") -> None:
    properties = redirected({**ORIGINAL, "message_id": job_id}, "sb.status", job_id)
    with store.unit_of_work() as uow:
        uow.add_submission(submission(job_id, via=via), {**BODY, "job_id": job_id}, properties)


def _update(status: str, seconds: float, key: str | None = None) -> Update:
    at = START + timedelta(seconds=seconds)
    return Update(key or update_key(status, seconds), status, at, f"{status} msg", "extractor")


def _record(store: SqlStore, update: Update, job_id: str = "job-1"):
    with store.engine.begin() as connection:
        return record_update(connection, job_id, update, START)


def test_a_queued_submission_creates_a_pending_job_keeping_the_original_reply(
    store: SqlStore,
) -> None:
    _queue(store)

    job = JobStore(store.engine, store.clock).job("job-1")

    assert job is not None
    assert (job.status, job.target, job.rule, job.via) == (
        "pending",
        "terra.stereo-rgb.bin2tif",
        "stereo-bin2tif",
        "amqp",
    )
    assert (job.reply_to, job.correlation_id) == ("clowder.abc", "corr-1")
    assert (job.resource_type, job.resource_id, job.dataset_id) == ("dataset", "ds-1", "ds-1")
    assert job.created_at == job.updated_at == START
    assert job.sent_at is job.started_at is job.finished_at is None


def test_a_job_id_queued_twice_keeps_one_job(store: SqlStore) -> None:
    _queue(store)
    _queue(store)

    assert JobStore(store.engine).counts() == {("terra.stereo-rgb.bin2tif", "pending"): 1}


def test_a_ray_job_has_our_job_id_as_its_ray_submission_id(store: SqlStore) -> None:
    _queue(store, "job-r", via="ray")

    job = JobStore(store.engine).job("job-r")

    assert job is not None and job.ray_submission_id == "job-r"


def test_the_relay_marks_a_job_submitted_with_clowder_s_job_id(
    store: SqlStore, clock: FakeClock
) -> None:
    _queue(store, via="clowder-api")
    clock.advance(5)
    [row] = store.claim_due(10, lease_s=30)

    store.mark_sent_many([row], {"job-1": "65a1f0c2e4b0a1b2c3d4e5f7"})

    jobs = JobStore(store.engine)
    job = jobs.job("job-1")
    assert job is not None
    assert (job.status, job.sent_at, job.clowder_job_id) == (
        "submitted",
        START + timedelta(seconds=5),
        "65a1f0c2e4b0a1b2c3d4e5f7",
    )
    assert [(e.status, e.source) for e in jobs.timeline("job-1")] == [("submitted", "relay")]


def test_an_outbox_row_given_up_on_makes_its_job_failed(store: SqlStore) -> None:
    _queue(store)
    [row] = store.claim_due(10, lease_s=30)

    store.mark_attempt_failed("job-1", "queue refused", None, True, claim_token=row.claim_token)

    jobs = JobStore(store.engine)
    job = jobs.job("job-1")
    assert job is not None
    assert (job.status, job.latest_message, job.finished_at) == ("failed", "queue refused", START)
    assert [(e.status, e.source) for e in jobs.timeline("job-1")] == [("failed", "relay")]


def test_updates_move_the_job_on_and_give_it_an_elapsed_time(store: SqlStore) -> None:
    _queue(store)
    for status, seconds in (("started", 1), ("processing", 2), ("succeeded", 4.5)):
        outcome = _record(store, _update(status, seconds))
        assert outcome.recorded and outcome.applied

    job = JobStore(store.engine).job("job-1")
    assert job is not None
    assert job.status == "succeeded"
    assert job.started_at == START + timedelta(seconds=1)
    assert job.finished_at == job.updated_at == START + timedelta(seconds=4.5)
    assert job.latest_message == "succeeded msg"
    assert job.elapsed_s(START + timedelta(days=1)) == 3.5


def test_skipped_stays_skipped_when_pyclowder_sends_done_after_skip(store: SqlStore) -> None:
    _queue(store)
    _record(store, _update("started", 1))
    _record(store, _update("skipped", 2))

    late = _record(store, _update("succeeded", 3))

    assert late.recorded and not late.applied and not late.finished
    jobs = JobStore(store.engine)
    job = jobs.job("job-1")
    assert job is not None and job.status == "skipped"
    assert job.finished_at == START + timedelta(seconds=2)
    assert [e.status for e in jobs.timeline("job-1")] == ["started", "skipped", "succeeded"]


def test_redelivered_update_creates_no_second_timeline_row(store: SqlStore) -> None:
    _queue(store)
    _record(store, _update("started", 1, key="k-1"))

    again = _record(store, _update("started", 1, key="k-1"))

    assert not again.recorded
    assert len(JobStore(store.engine).timeline("job-1")) == 1


def test_an_update_for_an_unknown_job_records_nothing_but_an_orphan(store: SqlStore) -> None:
    update = _update("started", 1)
    with store.engine.begin() as connection:
        assert not record_update(connection, "nobody", update, START).recorded
        kept = record_orphan(
            connection, update, START, correlation_id="c", named_job_id="x", body={"a": 1}
        )
        again = record_orphan(
            connection, update, START, correlation_id="c", named_job_id="x", body={"a": 1}
        )

    [orphan] = JobStore(store.engine).orphans()
    assert (kept, again) == (True, False)
    assert (orphan.correlation_id, orphan.named_job_id, orphan.body) == ("c", "x", {"a": 1})


def test_non_terminal_jobs_of_a_via_are_the_submitted_unfinished_ones(store: SqlStore) -> None:
    for job_id in ("r-1", "r-2", "r-3", "r-4"):
        _queue(store, job_id, via="ray")
    _queue(store, "a-1", via="amqp")
    store.mark_sent_many(store.claim_due(10, lease_s=30))
    _record(store, _update("succeeded", 1), job_id="r-2")
    jobs = JobStore(store.engine)
    jobs.record("r-3", Update("ray-r-3-running", st.STARTED, START, "RUNNING", st.SOURCE_RAY))

    found = jobs.non_terminal("ray")
    page = jobs.non_terminal("ray", limit=1, after="r-1")

    assert [j.job_id for j in found] == ["r-1", "r-3", "r-4"]
    assert [j.job_id for j in page] == ["r-3"]
