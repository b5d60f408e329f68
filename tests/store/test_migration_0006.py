"""Migration 0006: the job tables, with a job for each outbox row already there; and back."""

from __future__ import annotations

from sqlalchemy import inspect, text

from switchboard.store.engine import make_engine
from switchboard.store.migrate import alembic_config
from tests.conftest import Database
from tests.store.test_migration_0005 import _insert_row, _migrate

JOB_TABLES = {"jobs", "job_updates", "orphan_updates"}


def _tables(database: Database) -> set[str]:
    engine = make_engine(database.url, database.schema)
    try:
        return set(inspect(engine).get_table_names(schema=database.schema))
    finally:
        engine.dispose()


def _query(database: Database, statement: str) -> list[tuple]:
    engine = make_engine(database.url, database.schema)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement))]
    finally:
        engine.dispose()


def _downgrade(database: Database, revision: str) -> None:
    from alembic import command

    engine = make_engine(database.url, database.schema)
    try:
        with engine.begin() as connection:
            config = alembic_config(database.schema)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def test_migration_0006_gives_each_outbox_row_already_there_its_job(
    empty_database: Database,
) -> None:
    _migrate(empty_database, "0005")
    _insert_row(empty_database, "ray-job", "ray", {"message_id": "ray-job"})
    _insert_row(empty_database, "fwd-x", "status-relay", {"message_id": "fwd-x"})

    _migrate(empty_database, "0006")

    assert _tables(empty_database) >= JOB_TABLES
    assert _query(
        empty_database,
        "SELECT job_id, target, via, status, dataset_id, ray_submission_id FROM jobs",
    ) == [("ray-job", "x", "ray", "pending", "d", "ray-job")]


def test_migration_0006_downgrades_to_0005_without_the_job_tables(
    empty_database: Database,
) -> None:
    _migrate(empty_database, "0006")

    _downgrade(empty_database, "0005")

    assert not JOB_TABLES & _tables(empty_database)
    assert "submissions" in _tables(empty_database)
