"""`switchboard jobs`, `job` and the job lines of `status`, on a migrated SQLite database."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.cli_jobs import job_count_lines, parse_since
from switchboard.jobs.tracking import redirected
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.store.helpers import submission

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path, root_logging_restored: None) -> str:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    store = SqlStore(url)
    try:
        for job_id, via, target in (("j-1", "amqp", "ext.a"), ("j-2", "ray", "ext.b")):
            props = redirected({"reply_to": "clowder.x", "correlation_id": "c"}, "q.status", job_id)
            with store.unit_of_work() as uow:
                uow.add_submission(submission(job_id, via=via, extractor=target), {}, props)
    finally:
        store.close()
    return url


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def documented_job_keys() -> list[str]:
    """The `switchboard jobs --json` keys as the README lists them, in its order."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"`--json` prints a list of objects\s+with the keys (.*?)\.\n", readme, re.S)
    assert found is not None, "README no longer documents the `switchboard jobs --json` keys"
    return re.findall(r"`(\w+)`", found.group(1))


def test_jobs_json_lists_every_job_with_exactly_the_documented_keys(database: str) -> None:
    result = run("jobs", "--json", "--database", database)

    listed = json.loads(result.stdout)
    assert {j["job_id"] for j in listed} == {"j-1", "j-2"}
    assert all(list(job) == documented_job_keys() for job in listed)
    by_id = {j["job_id"]: j for j in listed}
    assert (by_id["j-2"]["via"], by_id["j-2"]["target"], by_id["j-2"]["status"]) == (
        "ray",
        "ext.b",
        "pending",
    )
    assert datetime.fromisoformat(by_id["j-1"]["created_at"]).tzinfo is not None
    assert by_id["j-1"]["finished_at"] is None and by_id["j-1"]["elapsed_s"] >= 0


def test_jobs_filters_by_target_and_prints_a_table(database: str) -> None:
    result = run("jobs", "--target", "ext.b", "--database", database)

    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "TARGET",
        "JOB",
        "ID",
        "STARTED",
        "LATEST",
        "UPDATE",
        "STATUS",
        "ELAPSED",
    ]
    assert len(rows) == 1 and rows[0].split()[:2] == ["ext.b", "j-2"]


def test_job_json_has_the_job_and_its_timeline(database: str) -> None:
    shown = json.loads(run("job", "j-1", "--json", "--database", database).stdout)

    assert (shown["job_id"], shown["status"], shown["timeline"]) == ("j-1", "pending", [])


def test_an_unknown_job_or_logs_of_a_job_that_is_not_ray_s_are_clear_errors(database: str) -> None:
    unknown = run("job", "nope", "--database", database)
    not_ray = run("job", "j-1", "--logs", "--database", database)

    assert unknown.exit_code == 1 and "no job nope" in unknown.output
    assert not_ray.exit_code == 1 and "not a Ray job (via amqp)" in not_ray.output


def test_status_shows_job_counts_by_status_per_target(database: str) -> None:
    result = run("status", "--database", database)

    assert "jobs:\n  ext.a: pending 1\n  ext.b: pending 1\n" in result.stdout


def test_job_count_lines_follow_the_status_order() -> None:
    counts = {("t", "succeeded"): 2, ("t", "pending"): 1}
    assert job_count_lines(counts) == ["jobs:", "  t: pending 1, succeeded 2"]
    assert job_count_lines({}) == ["jobs: none"]


def test_since_takes_an_age_or_an_iso_time() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-12-01T10:00:00", NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with pytest.raises(click.BadParameter, match="neither an ISO 8601 time"):
        parse_since("yesterday", NOW)


@pytest.mark.ray
def test_job_logs_prints_ray_s_logs_of_a_ray_job(database: str, ray_client, ray_address) -> None:
    from tests.ray_head import finished

    job_id = f"j-ray-{uuid.uuid4().hex[:8]}"  # the Ray head outlives this test
    store = SqlStore(database)
    try:
        with store.unit_of_work() as uow:
            uow.add_submission(submission(job_id, via="ray"), {}, {})
    finally:
        store.close()
    ray_client.submit_job(entrypoint="echo hello-from-ray-logs", submission_id=job_id)
    finished(ray_client, job_id)

    result = CliRunner().invoke(
        main,
        ["job", job_id, "--logs", "--database", database],
        env={"RAY_ADDRESS": ray_address},
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "hello-from-ray-logs" in result.stdout
