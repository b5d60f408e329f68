"""Operator actions on the outbox: retry and resubmit, idempotent and logged with who did it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from switchboard.cli import main
from switchboard.store.operator_sql import actions_for
from switchboard.store.sql import SqlStore
from tests.conftest import Database
from tests.store.helpers import submission


@pytest.fixture
def url(database: Database) -> str:
    """The database as one URL the CLI can be given (a PostgreSQL schema in its search_path)."""
    if database.schema is None:
        return database.url
    return f"{database.url}?options=-csearch_path%3D{database.schema}"


@pytest.fixture
def outbox(url: str) -> Iterator[SqlStore]:
    store = SqlStore(url)
    yield store
    store.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def queue(store: SqlStore, *jobs: tuple[str, str]) -> None:
    """Outbox rows (job id, target), then each failed for good."""
    with store.unit_of_work() as uow:
        for job, target in jobs:
            body = {"job_id": job, "jobid": job, "id": "file-1"}
            uow.add_submission(submission(job, extractor=target), body, {"message_id": job})
    for job, _ in jobs:
        store.mark_attempt_failed(job, "the extractor's queue is gone", None, True)


def job_json(url: str, job: str) -> dict:
    result = run("job", job, "--json", "--database", url)
    return json.loads(result.stdout)


def status_of(store: SqlStore, job: str) -> str:
    [row] = [r for r in store.recent_submissions(100) if r.submission.job_id == job]
    return row.status


def test_retry_sends_a_failed_job_again_and_a_second_retry_changes_nothing(
    url: str, outbox: SqlStore
) -> None:
    queue(outbox, ("job-a", "t1"))
    first = run("retry", "job-a", "--database", url, "--who", "ada")
    assert "job-a  pending again" in first.output
    assert "1 job(s) retried, 0 left alone" in first.output
    assert status_of(outbox, "job-a") == "pending"
    again = run("retry", "job-a", "--database", url, "--who", "ada")
    assert "not failed (pending): left alone" in again.output
    [logged] = actions_for(outbox, "job-a")
    assert (logged.who, logged.action) == ("ada", "retry")
    assert logged.detail == {"last_error": "the extractor's queue is gone"}
    job = job_json(url, "job-a")
    assert job["status"] == "pending"
    operator = [e for e in job["timeline"] if e["source"] == "operator"]
    assert [(e["status"], e["message"]) for e in operator] == [("pending", "retry by ada")]


def test_retry_failed_takes_every_failed_job_of_one_target(url: str, outbox: SqlStore) -> None:
    queue(outbox, ("job-a", "t1"), ("job-b", "t2"), ("job-c", "t1"))
    result = run("retry", "--failed", "--target", "t1", "--database", url, "--who", "ada")
    assert "2 job(s) retried" in result.output
    assert [status_of(outbox, j) for j in ("job-a", "job-b", "job-c")] == [
        "pending",
        "failed",
        "pending",
    ]


def test_retry_needs_job_ids_or_failed() -> None:
    result = CliRunner().invoke(main, ["retry"])
    assert result.exit_code == 2
    assert "give JOB_IDs or --failed" in result.output


def test_resubmit_queues_a_new_job_linked_to_the_old_one_once(url: str, outbox: SqlStore) -> None:
    queue(outbox, ("job-a", "t1"))
    first = run("resubmit", "job-a", "--database", url, "--who", "ada")
    new_id = first.output.split("resubmitted as ")[1].split()[0]
    [row] = [r for r in outbox.recent_submissions(100) if r.submission.job_id == new_id]
    assert row.status == "pending"
    assert row.body["job_id"] == row.body["jobid"] == row.properties["message_id"] == new_id
    assert row.submission.extractor == "t1"
    again = CliRunner().invoke(main, ["resubmit", "job-a", "--database", url])
    assert again.exit_code == 0
    assert f"already resubmitted as {new_id} (pending)" in again.output
    assert len(outbox.recent_submissions(100)) == 2
    assert [a.action for a in actions_for(outbox, "job-a")] == ["resubmit"]
    assert [a.detail for a in actions_for(outbox, new_id)] == [{"old_job_id": "job-a"}]
    new_job = job_json(url, new_id)
    assert new_job["status"] == "pending" and new_job["target"] == "t1"
    assert [e["message"] for e in new_job["timeline"]] == ["resubmission of job-a by ada"]
    old_job = job_json(url, "job-a")
    assert old_job["status"] == "failed"  # the old job's own outcome stands
    assert f"resubmitted as {new_id} by ada" in [e["message"] for e in old_job["timeline"]]
    with outbox.engine.connect() as connection:
        from sqlalchemy import select

        from switchboard.store.statements import submissions

        link = connection.execute(
            select(submissions.c.resubmit_of).where(submissions.c.job_id == new_id)
        ).scalar_one()
    assert link == "job-a"


def test_resubmitting_an_unknown_job_is_an_error(url: str, outbox: SqlStore) -> None:
    result = CliRunner().invoke(main, ["resubmit", "no-such-job", "--database", url])
    assert result.exit_code == 1
    assert "no-such-job: no such job" in result.output


def test_status_shows_throttled_rows_per_target(url: str, outbox: SqlStore) -> None:
    from switchboard.relay import Relay
    from switchboard.store.throttle_sql import SqlAdmissions
    from switchboard.testing import RecordingSink
    from switchboard.throttle import TargetLimit, Throttle

    with outbox.unit_of_work() as uow:
        for job in ("job-a", "job-b", "job-c"):
            uow.add_submission(submission(job, extractor="t1"), {"job_id": job}, {})
    limits = {"t1": TargetLimit(max_in_flight=1)}
    gate = Throttle(SqlAdmissions(outbox.engine, outbox.clock), lambda: limits)
    Relay(outbox, {"amqp": RecordingSink()}, throttle=gate).drain()
    result = run("status", "--database", url)
    assert "throttled (pending, held by limits): 2: t1 2" in result.output
