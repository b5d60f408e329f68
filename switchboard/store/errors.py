"""Sorts database errors into outages (StoreError: retry the batch later) and everything else.

Only an outage may hold up the pipeline: the batch is rolled back and retried after a backoff.
Every other database error (a value too long for an index, a constraint, a bug in a statement)
belongs to the data of some event: it propagates unchanged, so the processor isolates that
event and dead-letters it. PostgreSQL errors are sorted by SQLSTATE, SQLite errors by their
primary result code; an error with neither (the driver lost its socket) is an outage when the
DBAPI calls it operational or an interface failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import exc as sa_exc

from ..errors import StoreError

OUTAGE_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "57",  # operator intervention: admin or crash shutdown, cannot connect now, cancelled
        "58",  # system error: I/O error
    }
)
OUTAGE_SQLSTATES = frozenset(
    {
        "40001",  # serialization failure
        "40P01",  # deadlock detected
        "55P03",  # lock not available
        "25006",  # read-only transaction: connected to a standby, e.g. during a failover
    }
)
# SQLite primary result codes that are about the database file, not the data.
SQLITE_OUTAGE_CODES = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        9,  # SQLITE_INTERRUPT
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


def is_outage_sqlstate(sqlstate: str) -> bool:
    """Whether a PostgreSQL SQLSTATE means the database is (for now) unusable for any data."""
    return sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES or sqlstate in OUTAGE_SQLSTATES


def is_connection_failure(error: BaseException) -> bool:
    """Whether `error` means the database is (for now) unreachable rather than a bug or bad data.

    Statements sent on the driver's own connection (the archive's COPY) raise psycopg's errors
    unwrapped; they are sorted by the same rules as the ones SQLAlchemy wraps.
    """
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection became free
        return True
    if isinstance(error, psycopg.Error):
        operational = isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
        return _is_outage(error, operational)
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    operational = isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return _is_outage(error.orig, operational)


def _is_outage(original: BaseException | None, operational: bool) -> bool:
    """By SQLSTATE, else by SQLite result code, else whether the DBAPI called it operational."""
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return is_outage_sqlstate(sqlstate)
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in SQLITE_OUTAGE_CODES
    return operational


@contextmanager
def store_errors(where: str) -> Iterator[None]:
    """Re-raise outages inside the block as StoreError, keeping the original cause; let every
    other error through unchanged.

    `where` names the database (password hidden); the message never includes SQL parameters.
    """
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.Error) as error:
        if not is_connection_failure(error):
            raise
        raise StoreError(f"database {where} failed: {_summary(error)}") from error


def _summary(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line}"
