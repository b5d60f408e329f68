"""Many rows into one PostgreSQL table as one short statement over column arrays (`unnest`).

SQLAlchemy's multi-row INSERT renders a VALUES tuple per row: a statement whose text changes
with the row count, which SQLAlchemy compiles and psycopg re-parses for every batch (a fifth
of intake's CPU in `bench/pipeline.py --profile`). `INSERT ... SELECT ... FROM unnest(arrays)
WITH ORDINALITY` has one text whatever the count, so psycopg caches its conversion and the
server prepares it once; rows go in in the order given. The arrays travel in binary (`%b`):
psycopg's text format escapes every element with a regular expression, which for JSON bodies
(full of quotes) cost seven times as much.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from .engine import to_json

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped


def array_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """Insert `rows` (dicts with the same keys) into `table` on PostgreSQL in one statement,
    skipping rows that conflict (on `conflict`'s columns, or on any unique index when None);
    the `returning` column of the rows that went in ([] without `returning`).

    Values are bound as the column types bind them (JSON columns through `to_json`), so a row
    stores what SQLAlchemy's own INSERT would have stored.
    """
    if not rows:
        return []
    names = tuple(rows[0])
    statement, processors = _statement(table, names, tuple(conflict or ()), returning)
    parameters = _arrays(rows, names, processors, "c")
    result = connection.exec_driver_sql(statement, parameters)
    return list(result.scalars()) if returning is not None else []


def followers_statement(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    followers: Table,
    follower_rows: Sequence[Mapping[str, Any]],
) -> tuple[str, dict[str, list[Any]]]:
    """An `array_insert` of `rows` (not empty) skipping those whose `key` exists, and in the
    same statement the `follower_rows` whose `key` went in (a follower already there is left
    as it is), and its parameters; the statement returns the keys that went in. One round
    trip for a batch's outbox rows and the jobs made for them (`SqlUnitOfWork` sends it, in a
    pipeline with other writes)."""
    names = tuple(rows[0])
    lead, processors = _statement(table, names, (key,), key)
    parameters = _arrays(rows, names, processors, "c")
    if not follower_rows:
        return lead, parameters
    follower_names = tuple(follower_rows[0])
    follow, follower_processors = _statement(
        followers, follower_names, (key,), None, prefix="f", only_keys_of="lead"
    )
    statement = f"WITH lead AS ({lead}), follow AS ({follow}) SELECT {_quoted(key)} FROM lead"
    parameters |= _arrays(follower_rows, follower_names, follower_processors, "f")
    return statement, parameters


def _arrays(
    rows: Sequence[Mapping[str, Any]],
    names: tuple[str, ...],
    processors: list[Callable[[Any], Any] | None],
    prefix: str,
) -> dict[str, list[Any]]:
    """Each column's values as one array parameter, run through its value processor."""
    parameters = {}
    for position, name in enumerate(names):
        process = processors[position]
        values = [row[name] for row in rows]
        parameters[f"{prefix}{position}"] = (
            values if process is None else [process(v) for v in values]
        )
    return parameters


@cache
def _statement(
    table: Table,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    returning: str | None,
    prefix: str = "c",
    only_keys_of: str | None = None,
) -> tuple[str, list[Callable[[Any], Any] | None]]:
    """The statement text for these columns (array parameters named `prefix` + position),
    and each column's value processor. `only_keys_of` names a row source (a CTE) whose
    `conflict` column the inserted rows' must be among."""
    arrays: list[str] = []
    selected: list[str] = []
    processors: list[Callable[[Any], Any] | None] = []
    for position, name in enumerate(names):
        column = table.c[name]
        if isinstance(column.type, JSON):
            cast = "jsonb" if isinstance(column.type, JSONB) else "json"
            arrays.append(f"%({prefix}{position})b::text[]")
            selected.append(f"u.c{position}::{cast}")
            processors.append(_json_null_as_null if column.type.none_as_null else to_json)
        else:
            compiled = column.type.compile(dialect=_DIALECT)
            arrays.append(f"%({prefix}{position})b::{compiled}[]")
            selected.append(f"u.c{position}")
            processors.append(column.type.bind_processor(_DIALECT))
    aliases = ", ".join(f"c{p}" for p in range(len(names)))
    where = ""
    if only_keys_of is not None:
        (key,) = conflict
        where = f"WHERE u.c{names.index(key)} IN (SELECT {_quoted(key)} FROM {only_keys_of}) "
    text = (
        f"INSERT INTO {_quoted(table.name)} ({', '.join(_quoted(n) for n in names)}) "
        f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) "
        f"WITH ORDINALITY AS u({aliases}, ordinal) {where}ORDER BY u.ordinal "
    )
    if conflict:
        text += f"ON CONFLICT ({', '.join(_quoted(c) for c in conflict)}) DO NOTHING"
    else:
        text += "ON CONFLICT DO NOTHING"
    if returning is not None:
        text += f" RETURNING {_quoted(returning)}"
    return text, processors


def _json_null_as_null(value: Any) -> str | None:
    """A column with `none_as_null` stores None as SQL NULL (otherwise as JSON `null`)."""
    return None if value is None else to_json(value)


def _quoted(identifier: str) -> str:
    return _DIALECT.identifier_preparer.quote(identifier)
