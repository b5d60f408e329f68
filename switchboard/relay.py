"""The outbox relay: publishes committed submissions and records each attempt's outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .errors import BrokerError, ClowderUnavailable, DeliveryFailed, StoreError, SubmissionRejected
from .ports import OutboxRow, Sink, Store

log = logging.getLogger(__name__)

RETRYABLE = (DeliveryFailed, ClowderUnavailable)
CONNECTION_LOST = (BrokerError, StoreError)  # propagate: the daemon reconnects


def utc_now() -> datetime:
    return datetime.now(UTC)


class BatchSink(Protocol):
    """A sink that can publish many rows at once (the extractor-queue sink)."""

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]: ...


@dataclass
class RelayStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    more: bool = False  # the claim was full: more rows may be due right now

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


class Relay:
    """Send due outbox rows through the sink for their `via`; retry with backoff, then give up.

    Rows whose sink has `send_many` go out in chunks of `chunk_size` (one broker round trip
    per chunk instead of per row); others one by one. `keepalive` is called between chunks
    and sends so a slow target never starves the input connection's heartbeats. A lost
    connection (BrokerError) or database (StoreError) propagates: the claimed rows stay
    leased for `lease_s` and are tried again after the daemon reconnects. Any other exception
    from a sink (a bug, a full disk) is a failed attempt of the row(s) it concerns, retried
    with backoff like DeliveryFailed and logged with the job id: it never ends the loop.
    """

    def __init__(
        self,
        store: Store,
        sinks: Mapping[str, Sink],
        *,
        max_attempts: int = 10,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        lease_s: float = 30.0,
        chunk_size: int = 500,
        clock: Callable[[], datetime] = utc_now,
        keepalive: Callable[[], None] | None = None,
        metrics: Any = None,
    ) -> None:
        self.store = store
        self.sinks = sinks
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.lease_s = lease_s
        self.chunk_size = max(1, chunk_size)
        self.clock = clock
        self.keepalive = keepalive
        self.metrics = metrics

    def run_once(self, limit: int = 500) -> RelayStats:
        """Claim up to `limit` due rows and try each once."""
        rows: list[OutboxRow] = self.store.claim_due(limit, self.lease_s)
        stats = RelayStats(more=len(rows) >= limit)
        by_via: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_via.setdefault(row.submission.via, []).append(row)
        for via, group in by_via.items():
            sink = self.sinks.get(via)
            if sink is None:
                for row in group:
                    self._record(row, f"no sink configured for via={via}", False, stats)
            elif hasattr(sink, "send_many"):
                for start in range(0, len(group), self.chunk_size):
                    chunk = group[start : start + self.chunk_size]
                    results = self._send_many(sink, chunk)
                    self._mark_sent([row for row, error in results if error is None])
                    for row, error in results:
                        self._settle(row, error, stats, marked=True)
                    self._keepalive()
            else:
                for row in group:
                    self._settle(row, self._send_one(sink, row), stats)
                    self._keepalive()
        return stats

    def drain(self, limit: int = 500, max_rounds: int = 1000) -> RelayStats:
        """Run until no due row is left (or `max_rounds`); for tools and tests."""
        total = RelayStats()
        for _ in range(max_rounds):
            stats = self.run_once(limit)
            total.sent += stats.sent
            total.retried += stats.retried
            total.failed += stats.failed
            if not stats.more:
                break
        return total

    def _send_one(self, sink: Sink, row: OutboxRow) -> Exception | None:
        try:
            sink.send(row)
        except CONNECTION_LOST:
            raise
        except Exception as exc:  # any other failure is this row's failed attempt
            return exc
        return None

    def _send_many(
        self, sink: BatchSink, chunk: Sequence[OutboxRow]
    ) -> list[tuple[OutboxRow, Exception | None]]:
        """The sink's per-row results; an unexpected error of the whole call fails every row."""
        try:
            return list(sink.send_many(chunk))
        except CONNECTION_LOST:
            raise
        except Exception as exc:  # a bug in the sink: each row's attempt failed, retried later
            return [(row, exc) for row in chunk]

    def _mark_sent(self, rows: Sequence[OutboxRow]) -> None:
        """Mark rows sent: in one statement if the store offers `mark_sent_many`."""
        if not rows:
            return
        mark_many = getattr(self.store, "mark_sent_many", None)
        if mark_many is not None:
            mark_many([row.submission.job_id for row in rows])
            return
        for row in rows:
            self.store.mark_sent(row.submission.job_id)

    def _settle(
        self, row: OutboxRow, error: Exception | None, stats: RelayStats, *, marked: bool = False
    ) -> None:
        if error is None:
            if not marked:
                self.store.mark_sent(row.submission.job_id)
            stats.sent += 1
            self._count(row, "sent")
            log.info(
                "submitted",
                extra={
                    "job_id": row.submission.job_id,
                    "rule": row.submission.rule,
                    "target": row.submission.extractor,
                    "via": row.submission.via,
                },
            )
            return
        if isinstance(error, CONNECTION_LOST):
            raise error  # a sink reported a lost connection per row: reconnect, rows stay leased
        if isinstance(error, (SubmissionRejected, *RETRYABLE)):
            self._record(row, str(error), isinstance(error, RETRYABLE), stats)
            return
        log.error(
            "unexpected error sending a submission; counted as a failed attempt",
            exc_info=error,
            extra={"job_id": row.submission.job_id, "target": row.submission.extractor},
        )
        self._record(row, f"{type(error).__name__}: {error}", True, stats)

    def _record(self, row: OutboxRow, error: str, retryable: bool, stats: RelayStats) -> None:
        give_up = not retryable or row.attempts + 1 >= self.max_attempts
        delay_s = min(self.max_backoff_s, self.backoff_s * 2**row.attempts)
        retry_at = None if give_up else self.clock() + timedelta(seconds=delay_s)
        self.store.mark_attempt_failed(row.submission.job_id, error, retry_at, give_up)
        if give_up:
            stats.failed += 1
        else:
            stats.retried += 1
        self._count(row, "failed" if give_up else "retried")
        log.warning(
            "submission %s",
            "failed" if give_up else "will be retried",
            extra={
                "job_id": row.submission.job_id,
                "target": row.submission.extractor,
                "error": error,
                "attempts": row.attempts + 1,
            },
        )

    def _count(self, row: OutboxRow, status: str) -> None:
        if self.metrics is not None:
            self.metrics.submissions.labels(row.submission.extractor, status).inc()

    def _keepalive(self) -> None:
        if self.keepalive is not None:
            self.keepalive()
