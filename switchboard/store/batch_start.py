"""A batch's first round trip on PostgreSQL: its ids recorded in the ledger, its datasets
locked and read, sent together in one psycopg pipeline.

The three are independent of each other's answers, yet each cost intake's one thread a wait
for the server and a fresh turn at the GIL (four with the transaction's BEGIN). In a
pipeline the server still runs them one after another, each statement under its own
snapshot, so the views are read after the locks are held (see `dataset_locks`), as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection

from ..model import FileInfo
from .dataset_locks import lock_statement
from .dataset_rows import VIEWS, views_of

# the ledger insert of a batch on PostgreSQL (also `SqlUnitOfWork.record_processed_many`'s)
LEDGER = """
INSERT INTO processed_messages (message_id, processed_at)
SELECT unnest(%(ids)b::varchar[]), %(at)s
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id
"""


def start_batch(
    connection: Connection,
    message_ids: Sequence[str],
    at: datetime,
    dataset_ids: Sequence[str],
    meanwhile: Callable[[], object] = lambda: None,
) -> tuple[set[str], dict[str, tuple[str | None, list[FileInfo]]]]:
    """Record `message_ids` (new ones get `at`) and lock and read `dataset_ids`, as the first
    statements of the connection's transaction; the ids that were new, and the datasets'
    stored names and files (a dataset never seen is missing). `meanwhile` runs once the
    statements are sent, before their answers are read."""
    raw = connection.connection.driver_connection
    assert raw is not None  # a checked-out connection always has its driver's
    locks = lock_statement(dataset_ids)
    with raw.pipeline(), raw.cursor() as ledger, raw.cursor() as lock, raw.cursor() as read:
        if message_ids:
            ledger.execute(LEDGER, {"ids": list(message_ids), "at": at})
        if locks is not None:
            lock.execute(*locks)
            read.execute(VIEWS, {"ids": list(dataset_ids)})
        meanwhile()
        new = {row[0] for row in ledger.fetchall()} if message_ids else set()
        views = views_of(read.fetchall()) if locks is not None else {}
    return new, views
