"""The unit of work's statements, built once (per dialect) so each call only binds values.

PostgreSQL and SQLite (3.24+) share `INSERT ... ON CONFLICT`; on SQLite `DO NOTHING` is its
`INSERT OR IGNORE` restricted to the named conflict. RETURNING tells whether a row went in:
SQLAlchemy does not keep the rowcount of a compiled INSERT on psycopg.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from .models import Dataset, DatasetFile, ProcessedMessage, SubmissionRow

messages = cast(Table, ProcessedMessage.__table__)
datasets = cast(Table, Dataset.__table__)
files = cast(Table, DatasetFile.__table__)
submissions = cast(Table, SubmissionRow.__table__)


@dataclass(frozen=True)
class WriteStatements:
    """Executed with a dict of column values (plus `of_dataset` for `add_file`)."""

    record_processed: Executable
    add_file: Executable
    set_dataset_name: Executable
    add_submission: Executable


def among(column: ColumnElement[Any], values: list[str], dialect_name: str) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter whatever the
    count, so neither SQLAlchemy nor psycopg rebuilds and re-parses the statement per batch."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String())))
    return column.in_(values)


def upsert(dialect_name: str, table: Table) -> Any:
    """An INSERT with `on_conflict_do_nothing` / `on_conflict_do_update` and `excluded`."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for dialect {dialect_name!r}")


@cache
def write_statements(dialect_name: str) -> WriteStatements:
    return WriteStatements(
        record_processed=upsert(dialect_name, messages)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(messages.c.message_id),
        add_file=_add_file(dialect_name),
        set_dataset_name=_set_dataset_name(dialect_name),
        add_submission=upsert(dialect_name, submissions)
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(submissions.c.job_id),
    )


def _add_file(dialect_name: str) -> Executable:
    """Insert at the next position in the dataset; a file seen before keeps its place and
    first values, except that an empty name or mime type and an unknown size are filled in."""
    insert = upsert(dialect_name, files)
    existing, new = files.c, insert.excluded
    seen = files.alias("seen")
    next_position = (
        select(func.coalesce(func.max(seen.c.position), 0) + 1)
        .where(seen.c.dataset_id == bindparam("of_dataset"))
        .scalar_subquery()
    )
    statement: Executable = insert.values(position=next_position).on_conflict_do_update(
        index_elements=["dataset_id", "file_id"],
        set_={
            "name": case((existing.name == "", new.name), else_=existing.name),
            "mime_type": case((existing.mime_type == "", new.mime_type), else_=existing.mime_type),
            "size": func.coalesce(existing.size, new.size),
        },
    )
    return statement


def _set_dataset_name(dialect_name: str) -> Executable:
    insert = upsert(dialect_name, datasets)
    statement: Executable = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"name": insert.excluded.name, "name_fetched_at": insert.excluded.name_fetched_at},
    )
    return statement


def dataset_view_query() -> Select[Any]:
    """A dataset's name and files in one round trip, given `dataset_id`: one row per file in
    first-seen order, or a single row with a null `file_id` when it has none."""
    want = select(bindparam("dataset_id", type_=String()).label("id")).subquery("want")
    joined = want.outerjoin(datasets, datasets.c.id == want.c.id).outerjoin(
        files, files.c.dataset_id == want.c.id
    )
    return (
        select(
            datasets.c.name.label("dataset_name"),
            files.c.file_id,
            files.c.name,
            files.c.mime_type,
            files.c.size,
        )
        .select_from(joined)
        .order_by(files.c.position, files.c.first_seen_at, files.c.file_id)
    )


DATASET_VIEW = dataset_view_query()
