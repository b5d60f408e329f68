"""Shared fixtures: PostgreSQL (a fresh schema per test), SqlStores, RabbitMQ, root logging."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from psycopg import sql

from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.broker import side_channel

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL test database's SQLAlchemy URL; fails (never skips) when it is down."""
    try:
        with psycopg.connect(PG_CONNINFO, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 (database 'test') is unreachable: {error}")
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for this test alone, dropped with its tables after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Database:
    """Where a test's database lives: a URL plus, on PostgreSQL, its private schema."""

    kind: str  # "sqlite" | "postgresql"
    url: str
    schema: str | None = None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """An empty database, once as an SQLite file and once as a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return Database("sqlite", f"sqlite:///{tmp_path / 'switchboard.db'}")
    pg_url = request.getfixturevalue("pg_url")
    return Database("postgresql", pg_url, request.getfixturevalue("pg_schema"))


@pytest.fixture
def database(empty_database: Database) -> Database:
    """Like `empty_database`, migrated to the head revision."""
    upgrade(empty_database.url, empty_database.schema)
    return empty_database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database: Database, clock: FakeClock) -> Iterator[SqlStore]:
    """A migrated SqlStore on `clock`, on SQLite and on PostgreSQL."""
    made = SqlStore(database.url, schema=database.schema, clock=clock)
    yield made
    made.close()


@pytest.fixture
def sql_store(database: Database) -> Iterator[SqlStore]:
    """A migrated SqlStore, on SQLite and on PostgreSQL."""
    store = SqlStore(database.url, schema=database.schema)
    yield store
    store.close()


@pytest.fixture
def channel() -> Iterator[BlockingChannel]:
    """A channel on the test RabbitMQ, on a connection of the test's own."""
    with side_channel() as opened:
        yield opened


@pytest.fixture
def root_logging_restored() -> Iterator[None]:
    """The root logger's handlers and level put back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One private Ray head per test session (4 logical CPUs, a custom `bigdb` resource).

    Started by `switchboard.ray_local.LocalRay` (own temp dir, free ports, dashboard on
    127.0.0.1) and stopped by its process id, never by the `ray` CLI's stop command (that stops
    every Ray on the machine); yields the job API's address.
    """
    pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")
    from switchboard.ray_local import LocalRay

    with LocalRay(num_cpus=4, resources={"bigdb": 1}) as address:
        yield address


@pytest.fixture
def ray_client(ray_address: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """A JobSubmissionClient of the session's head (RAY_ADDRESS unset: Ray would prefer it)."""
    from ray.job_submission import JobSubmissionClient

    from switchboard.ray_local import RAY_ADDRESS_VARIABLES

    for variable in RAY_ADDRESS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return JobSubmissionClient(ray_address)
