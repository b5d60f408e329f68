"""Retention: old sent/failed outbox rows, dedup-ledger ids and archived events pruned in small
batches (by age, and with a row limit by count)."""

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
    Archived events (see `provenance`) older than `retention_days` go too, and with
    `retention_rows` only the newest that many archived events, ledger ids and finished outbox
    rows are kept; `retention_days` 0 prunes by rows only.
    """

    __name__ = "retention"

    def __init__(
        self,
        store: SqlStore,
        *,
        retention_days: float,
        retention_rows: int = 0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        interval_s: float = DEFAULT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self.retention_rows = retention_rows
        self.batch_rows = batch_rows
        self.interval_s = interval_s
        self.monotonic = monotonic
        self._next_s = 0.0

    def __call__(self) -> None:
        now_s = self.monotonic()
        if now_s < self._next_s:
            return
        from .provenance.pruning import prune_provenance

        before = None if self.retention is None else self.store.clock() - self.retention
        outbox, ledger = (0, 0) if before is None else self.store.prune(before, self.batch_rows)
        more = prune_provenance(self.store, before, self.retention_rows, self.batch_rows)
        outbox, ledger = outbox + more["outbox"], ledger + more["ledger"]
        backlog = max(outbox, ledger, *more.values()) >= self.batch_rows
        self._next_s = now_s if backlog else now_s + self.interval_s
        if outbox or ledger or more["archive"]:
            log.info(
                "pruned %d outbox rows, %d ledger ids and %d archived events (older than %s%s)",
                outbox,
                ledger,
                more["archive"],
                "-" if before is None else before.isoformat(timespec="seconds"),
                f" or beyond the newest {self.retention_rows}" if self.retention_rows else "",
                extra={
                    "pruned_outbox": outbox,
                    "pruned_ledger": ledger,
                    "pruned_archive": more["archive"],
                },
            )
