"""Statements sent together in one pipeline run in order, and a failing one fails them all."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection

from switchboard.store.engine import make_engine
from switchboard.store.errors import is_connection_failure
from switchboard.store.pipelined import first_column_after

pytestmark = pytest.mark.postgres

INSERT = ("INSERT INTO t (n) VALUES (%(n)s)", {})
NUMBERS = ("SELECT n FROM t ORDER BY n", {})


@pytest.fixture
def connection(pg_url: str, pg_schema: str) -> Iterator[Connection]:
    """A connection inside a transaction, with an empty table `t` (n: unique integers)."""
    engine = make_engine(pg_url, pg_schema)
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TEMPORARY TABLE t (n integer PRIMARY KEY)")
        yield connection
    engine.dispose()


def test_the_last_statement_sees_every_write_sent_before_it(connection: Connection) -> None:
    writes = [(INSERT[0], {"n": n}) for n in (3, 1, 2)]
    assert first_column_after(connection, writes, NUMBERS) == [1, 2, 3]


def test_with_no_writes_the_last_statement_runs_alone(connection: Connection) -> None:
    assert first_column_after(connection, [], NUMBERS) == []


def test_a_write_that_fails_fails_the_pipeline_as_the_data_error_it_is(
    connection: Connection,
) -> None:
    writes = [(INSERT[0], {"n": 1}), (INSERT[0], {"n": 1})]
    with pytest.raises(psycopg.errors.UniqueViolation) as raised:
        first_column_after(connection, writes, NUMBERS)
    assert not is_connection_failure(raised.value)  # the processor isolates the event at fault


def test_meanwhile_runs_once_the_statement_is_on_the_server(
    connection: Connection, pg_url: str
) -> None:
    """The statement waits on a lock another session holds; `meanwhile` sees it waiting (so it
    was sent before `meanwhile` ran), then lets it through."""
    from tests.conftest import PG_CONNINFO

    seen: list[bool] = []
    with psycopg.connect(PG_CONNINFO, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(4242)")

        def meanwhile() -> None:
            seen.append(waiting_on_advisory_lock(other, 4242))
            other.execute("SELECT pg_advisory_unlock(4242)")

        statement = ("SELECT 7 FROM pg_advisory_xact_lock(4242)", {})
        assert first_column_after(connection, [], statement, meanwhile) == [7]
    assert seen == [True]


def waiting_on_advisory_lock(observer: psycopg.Connection, key: int, timeout_s: float = 10) -> bool:
    """Whether some session is (within `timeout_s`) waiting for advisory lock `key`."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
            " AND NOT granted",
            (key,),
        ).fetchone()
        if row is not None and row[0]:
            return True
        time.sleep(0.01)
    return False
