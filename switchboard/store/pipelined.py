"""Several statements of one PostgreSQL transaction sent in one psycopg pipeline: one round
trip where each would have cost the intake thread a wait and a fresh turn at the GIL.

The server still runs them one after another, in order, each under its own snapshot, so a
statement sees what the ones before it wrote; only the last one's answer is read. Work that
needs no answer can run on the client while the server runs them (`meanwhile`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from sqlalchemy import Connection

Statement = tuple[str, Mapping[str, Any]]


def first_column_after(
    connection: Connection,
    writes: Sequence[Statement],
    last: Statement,
    meanwhile: Callable[[], object] | None = None,
) -> list[Any]:
    """Run `writes` then `last` on `connection`'s driver connection in one pipeline; the first
    column of `last`'s rows. `meanwhile` runs once all are sent, before the answer is read.
    With neither `writes` nor `meanwhile`, `last` alone, through SQLAlchemy."""
    if not writes and meanwhile is None:
        return list(connection.exec_driver_sql(*last).scalars())
    raw = connection.connection.driver_connection
    assert raw is not None  # a checked-out connection always has its driver's
    with ExitStack() as stack:
        stack.enter_context(raw.pipeline())
        for statement, parameters in writes:
            stack.enter_context(raw.cursor()).execute(statement, parameters)
        answer = stack.enter_context(raw.cursor())
        answer.execute(*last)
        if meanwhile is not None:
            meanwhile()
        return [row[0] for row in answer.fetchall()]
