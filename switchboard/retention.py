"""Retention: old sent/failed outbox rows and dedup-ledger ids pruned in small batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from .store.sql import SqlStore

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 500
DEFAULT_INTERVAL_S = 60.0


class Pruner:
    """A periodic hook of the daemon: each call deletes at most one small batch per table.

    Rows are pruned once older than `retention_days`: outbox rows that were sent or failed
    (by their last attempt), and ledger ids (by when they were processed). A small batch per
    call keeps each transaction short, so intake never waits on it; while a backlog remains
    the next loop prunes again, otherwise the hook rests for `interval_s`.

    Pruning a ledger id means a redelivery of that message is processed as new; pruning the
    outbox row means a submission it makes again is sent again (its job id is the same).
    """

    __name__ = "retention"

    def __init__(
        self,
        store: SqlStore,
        *,
        retention_days: float,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        interval_s: float = DEFAULT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retention = timedelta(days=retention_days)
        self.batch_rows = batch_rows
        self.interval_s = interval_s
        self.monotonic = monotonic
        self._next_s = 0.0

    def __call__(self) -> None:
        now_s = self.monotonic()
        if now_s < self._next_s:
            return
        before = self.store.clock() - self.retention
        outbox, ledger = self.store.prune(before, self.batch_rows)
        backlog = max(outbox, ledger) >= self.batch_rows
        self._next_s = now_s if backlog else now_s + self.interval_s
        if outbox or ledger:
            log.info(
                "pruned %d outbox rows and %d ledger ids older than %s",
                outbox,
                ledger,
                before.isoformat(timespec="seconds"),
                extra={"pruned_outbox": outbox, "pruned_ledger": ledger},
            )
