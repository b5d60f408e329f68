"""Builds SQLAlchemy engines for the two supported databases, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from ..secrets import redact_url

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def redacted(url: str | URL) -> str:
    """The URL as text with any password replaced by `***`, safe for logs and errors."""
    return redact_url(make_url(url).render_as_string(hide_password=False))


def dialect_of(url: str | URL) -> str:
    """`sqlite` or `postgresql`; ValueError for any other database."""
    name = make_url(url).get_backend_name()
    if name not in SUPPORTED_DIALECTS:
        raise ValueError(
            f"unsupported database {redacted(url)}: Switchboard runs on SQLite or PostgreSQL"
        )
    return name


def checked_schema(url: str | URL, schema: str | None) -> str | None:
    """Validate a PostgreSQL schema name; SQLite has no schemas, so one is refused there."""
    if schema is None:
        return None
    if dialect_of(url) != "postgresql":
        raise ValueError(f"schema {schema!r} given, but schemas need PostgreSQL, not SQLite")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema name {schema!r} must be a plain SQL identifier")
    return schema


def to_json(value: Any) -> str:
    """JSON for the JSON columns, accepting read-only mappings (MappingProxyType) and sets."""
    return _ENCODER.encode(value)


def _jsonable(value: Any) -> Any:
    """What `to_json` writes for a value JSON has no type for (its encoder's `default`)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Set):
        return sorted(value, key=repr)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# one encoder for every call: json.dumps with arguments builds a new one each time
_ENCODER = json.JSONEncoder(default=_jsonable, separators=(",", ":"))


def make_engine(url: str | URL, schema: str | None = None, *, reads_only: bool = False) -> Engine:
    """An engine with pre-ping, hidden SQL parameters and per-dialect session settings.

    Nothing connects until the engine is first used. `reads_only` (the web pages) leaves out
    SQLite's `BEGIN IMMEDIATE`, so a page being read never holds the write lock: in WAL mode
    readers and the writer do not wait for each other.
    """
    parsed = make_url(url)
    schema = checked_schema(parsed, schema)
    if dialect_of(parsed) == "sqlite":
        return _sqlite_engine(parsed, immediate=not reads_only)
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(
        parsed,
        pool_pre_ping=True,
        hide_parameters=True,  # bodies may carry secretKey; errors must not echo them
        json_serializer=to_json,
        connect_args=connect_args,
    )


def _sqlite_engine(url: URL, *, immediate: bool = True) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=to_json,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        # one shared connection keeps an in-memory database alive across threads
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # take over transaction control from pysqlite so BEGIN IMMEDIATE can be issued below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # take the write lock up front: a deferred transaction that reads then writes can fail
        # with "database is locked" when another writer got in between
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
