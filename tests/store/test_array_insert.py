"""`array_insert`: many rows in one statement over arrays, stored as SQLAlchemy stores them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from switchboard.store.array_insert import array_insert
from switchboard.store.engine import make_engine
from switchboard.store.job_tables import job_updates
from switchboard.store.migrate import upgrade
from switchboard.store.statements import submissions

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(pg_url: str, pg_schema: str) -> Iterator[Engine]:
    upgrade(pg_url, pg_schema)
    made = make_engine(pg_url, pg_schema)
    yield made
    made.dispose()


def outbox_row(job_id: str, **changes: Any) -> dict[str, Any]:
    row = {
        "job_id": job_id,
        "rule": "bin2tif",
        "extractor": "terra.bin2tif",
        "via": "amqp",
        "resource_type": "dataset",
        "resource_id": "ds-1",
        "parameters": {"files": ["a.bin", "b.bin"], "n": 2},
        "event_message_id": "msg-1",
        "body": {"secretKey": "s", "nested": {"ü": [1, None, 2.5]}},
        "properties": {},
        "options": {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }
    return row | changes


def stored(engine: Engine, job_ids: list[str]) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(submissions).where(submissions.c.job_id.in_(job_ids)))
        return sorted((dict(r._mapping) for r in rows), key=lambda r: r["job_id"])


def test_rows_store_exactly_what_sqlalchemys_insert_stores(engine: Engine) -> None:
    offset = timezone(timedelta(hours=-7))
    ours = [outbox_row("a-1"), outbox_row("a-2", created_at=NOW.astimezone(offset))]
    theirs = [outbox_row("b-1"), outbox_row("b-2", created_at=NOW.astimezone(offset))]
    with engine.begin() as connection:
        assert array_insert(connection, submissions, ours, conflict=["job_id"], returning="job_id")
        connection.execute(insert(submissions), theirs)

    def without_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "job_id"} for r in rows]

    assert without_id(stored(engine, ["a-1", "a-2"])) == without_id(stored(engine, ["b-1", "b-2"]))
    assert stored(engine, ["a-2"])[0]["created_at"] == NOW


def test_conflicting_rows_are_skipped_and_only_the_new_ones_are_returned(engine: Engine) -> None:
    with engine.begin() as connection:
        array_insert(connection, submissions, [outbox_row("j-2")], conflict=["job_id"])
    rows = [outbox_row("j-1"), outbox_row("j-2", rule="changed"), outbox_row("j-3")]
    with engine.begin() as connection:
        added = array_insert(connection, submissions, rows, conflict=["job_id"], returning="job_id")

    assert added == ["j-1", "j-3"]
    assert stored(engine, ["j-2"])[0]["rule"] == "bin2tif"  # the first row kept its values


def test_rows_go_in_in_the_order_given(engine: Engine) -> None:
    keys = [f"key-{n:03d}" for n in reversed(range(200))]
    rows = [
        {
            "update_key": key,
            "job_id": "j-1",
            "at": NOW,
            "received_at": NOW,
            "status": "started",
            "message": None,
            "source": "relay",
        }
        for key in keys
    ]
    with engine.begin() as connection:
        ids = array_insert(connection, job_updates, rows, conflict=["update_key"], returning="id")
        read = connection.execute(select(job_updates.c.update_key).order_by(job_updates.c.id))

        assert ids == sorted(ids)
        assert list(read.scalars()) == keys


def test_a_column_of_nulls_only_goes_in_as_nulls(engine: Engine) -> None:
    rows = [outbox_row("n-1", last_error=None), outbox_row("n-2", last_error=None)]
    with engine.begin() as connection:
        array_insert(connection, submissions, rows, conflict=["job_id"])

    assert [r["last_error"] for r in stored(engine, ["n-1", "n-2"])] == [None, None]


def test_no_rows_run_no_statement(engine: Engine) -> None:
    with engine.begin() as connection:
        assert array_insert(connection, submissions, [], conflict=["job_id"]) == []


def test_followers_go_in_only_for_the_rows_that_went_in_with_them(engine: Engine) -> None:
    from switchboard.store.array_insert import followers_statement
    from switchboard.store.job_records import job_row
    from switchboard.store.job_tables import jobs

    from .helpers import submission

    def job(job_id: str, rule: str = "bin2tif") -> dict[str, Any]:
        return dict(job_row(submission(job_id, rule=rule), {}, {}, NOW))

    with engine.begin() as connection:  # j-2 is queued already, with its job
        statement = followers_statement(
            submissions, [outbox_row("j-2")], "job_id", jobs, [job("j-2")]
        )
        connection.exec_driver_sql(*statement)
    rows = [outbox_row("j-1"), outbox_row("j-2"), outbox_row("j-3")]
    followers = [job("j-1"), job("j-2", rule="again"), job("j-3"), job("j-9")]  # j-9: no row
    with engine.begin() as connection:
        statement = followers_statement(submissions, rows, "job_id", jobs, followers)
        added = list(connection.exec_driver_sql(*statement).scalars())
        made = {
            job_id: rule for job_id, rule in connection.execute(select(jobs.c.job_id, jobs.c.rule))
        }

    assert sorted(added) == ["j-1", "j-3"]
    assert made == {"j-1": "bin2tif", "j-2": "bin2tif", "j-3": "bin2tif"}
