"""Migrations: from empty to head, and refusing to run on a database that is not migrated."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from switchboard.errors import NotMigrated
from switchboard.store.engine import make_engine
from switchboard.store.migrate import current_revision, ensure_current, head_revision, upgrade
from tests.conftest import Database

TABLES = {"processed_messages", "datasets", "dataset_files", "submissions"}


def _tables(database: Database) -> set[str]:
    engine = make_engine(database.url, database.schema)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_takes_an_empty_database_to_head(empty_database: Database) -> None:
    assert current_revision(empty_database.url, empty_database.schema) is None

    upgrade(empty_database.url, empty_database.schema)

    assert current_revision(empty_database.url, empty_database.schema) == head_revision()
    assert TABLES | {"alembic_version"} <= _tables(empty_database)  # later revisions add more


def test_upgrade_twice_is_harmless(database: Database) -> None:
    upgrade(database.url, database.schema)

    assert current_revision(database.url, database.schema) == head_revision()


def test_ensure_current_refuses_an_empty_database_and_says_what_to_run(
    empty_database: Database,
) -> None:
    with pytest.raises(NotMigrated) as refused:
        ensure_current(empty_database.url, empty_database.schema)

    assert str(refused.value) == (
        f"database at {empty_database.url} is not migrated (at empty, need {head_revision()}): "
        "run 'switchboard db upgrade'"
    )


def test_ensure_current_accepts_a_migrated_database(database: Database) -> None:
    ensure_current(database.url, database.schema)


def test_ensure_current_accepts_an_engine_whose_search_path_picks_the_schema(
    database: Database,
) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        ensure_current(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_not_migrated_message_hides_the_password(pg_url: str, pg_schema: str) -> None:
    with_password = pg_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it

    with pytest.raises(NotMigrated) as refused:
        ensure_current(with_password, pg_schema)

    assert "hunter2" not in str(refused.value)
    assert "postgres:***@127.0.0.1" in str(refused.value)


@pytest.mark.postgres
def test_a_schema_keeps_every_table_including_the_version_table(
    pg_url: str, pg_schema: str
) -> None:
    upgrade(pg_url, pg_schema)

    engine = make_engine(pg_url)
    try:
        inspector = inspect(engine)
        in_schema = set(inspector.get_table_names(schema=pg_schema))
        assert TABLES | {"alembic_version"} <= in_schema
        assert not in_schema & set(inspector.get_table_names(schema="public"))
    finally:
        engine.dispose()


def test_sqlite_refuses_a_schema(tmp_path) -> None:
    with pytest.raises(ValueError, match="schemas need PostgreSQL"):
        upgrade(f"sqlite:///{tmp_path / 'x.db'}", "some_schema")
