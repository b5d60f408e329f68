"""Per-dataset transaction locks on PostgreSQL, so concurrent daemons see each other's files.

Rules read a dataset's view (its files so far): "two BIN files are in". Two daemons (replicas)
that commit the first and the second file of a dataset at the same moment would each see only
its own, and the rule would never fire. So a transaction takes an advisory lock on every
dataset it is about to read before reading it, held to its end: the second daemon waits, then
reads the first one's committed file. Locks are taken in one statement, in key order, so two
batches over the same datasets queue instead of deadlocking. SQLite needs none: its writers
take turns (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

LOCK_CLASS = 0x5344  # the advisory-lock class id of dataset locks ("SD"); claim owners: "SB"

_LOCK = "SELECT pg_advisory_xact_lock(%(cls)s, k) FROM unnest(%(keys)b::int4[]) AS k"


def lock_key(dataset_id: str) -> int:
    """The lock's 32-bit key (two datasets sharing one only wait for each other needlessly)."""
    key = zlib.crc32(dataset_id.encode("utf-8", "surrogatepass"))
    return key - (1 << 32) if key >= 1 << 31 else key


def lock_datasets(connection: Connection, dataset_ids: Iterable[str]) -> None:
    """Take the transaction-scoped lock of each dataset, in key order (one round trip)."""
    statement = lock_statement(dataset_ids)
    if statement is not None:
        connection.exec_driver_sql(*statement).all()


def lock_statement(dataset_ids: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
    """The statement (text, parameters) that takes the datasets' locks; None for no dataset."""
    keys = sorted({lock_key(d) for d in dataset_ids if d})
    return (_LOCK, {"cls": LOCK_CLASS, "keys": keys}) if keys else None
