"""The outbox relay: publishes committed submissions and records each attempt's outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import ClowderRejected, ClowderUnavailable, DeliveryFailed
from .ports import OutboxRow, Sink, Store

log = logging.getLogger(__name__)

RETRYABLE = (DeliveryFailed, ClowderUnavailable)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RelayStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Relay:
    """Send due outbox rows through the sink for their `via`; retry with backoff, then give up."""

    def __init__(
        self,
        store: Store,
        sinks: Mapping[str, Sink],
        *,
        max_attempts: int = 10,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        lease_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.sinks = sinks
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.lease_s = lease_s
        self.clock = clock

    def run_once(self, limit: int = 500) -> RelayStats:
        """Claim up to `limit` due rows and try each once."""
        stats = RelayStats()
        rows: list[OutboxRow] = self.store.claim_due(limit, self.lease_s)
        for row in rows:
            self._send(row, stats)
        return stats

    def _send(self, row: OutboxRow, stats: RelayStats) -> None:
        job = row.submission.job_id
        sink = self.sinks.get(row.submission.via)
        if sink is None:
            self._fail(row, f"no sink configured for via={row.submission.via}", give_up=True)
            stats.failed += 1
            return
        try:
            sink.send(row)
        except ClowderRejected as exc:
            self._fail(row, str(exc), give_up=True)
            stats.failed += 1
        except RETRYABLE as exc:
            give_up = row.attempts + 1 >= self.max_attempts
            self._fail(row, str(exc), give_up=give_up)
            if give_up:
                stats.failed += 1
            else:
                stats.retried += 1
        else:
            self.store.mark_sent(job)
            stats.sent += 1
            log.info(
                "submitted",
                extra={
                    "job_id": job,
                    "rule": row.submission.rule,
                    "target": row.submission.extractor,
                    "via": row.submission.via,
                },
            )

    def _fail(self, row: OutboxRow, error: str, *, give_up: bool) -> None:
        delay_s = min(self.max_backoff_s, self.backoff_s * 2**row.attempts)
        retry_at = None if give_up else self.clock() + timedelta(seconds=delay_s)
        self.store.mark_attempt_failed(row.submission.job_id, error, retry_at, give_up)
        log.warning(
            "submission %s",
            "failed" if give_up else "will be retried",
            extra={"job_id": row.submission.job_id, "error": error, "attempts": row.attempts + 1},
        )
