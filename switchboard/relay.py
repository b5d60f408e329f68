"""The outbox relay: publishes committed submissions and records each attempt's outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import utc_now
from .errors import BrokerError, ClowderUnavailable, DeliveryFailed, StoreError, SubmissionRejected
from .ports import Metrics, NullMetrics, OutboxRow, SendResult, Sink, Store
from .throttle import Throttle

log = logging.getLogger(__name__)

RETRYABLE = (DeliveryFailed, ClowderUnavailable)
CONNECTION_LOST = (BrokerError, StoreError)  # propagate: the caller reconnects


@dataclass
class RelayStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # rows whose claim another relay took: not sent (or not marked) by this one
    more: bool = False  # the claim was full: more rows may be due right now

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


class Relay:
    """Send due outbox rows through the sink for their `via`; retry with backoff, then give up.

    Fencing: rows are claimed under a fresh token for `lease_s`. Right before each send (a
    row, or a chunk for batched sinks) the claim is renewed; a row whose claim
    another relay has taken meanwhile is not sent, and outcomes are recorded only under the
    token it was claimed with, so a relay that was stuck past its lease neither sends those
    rows afterwards nor overwrites what the new holder recorded. A sink's own timeout must be
    shorter than `lease_s` (app.py derives them from it) so a send always ends within the
    claim it was checked under. The first send after a claim skips the renewal when it
    starts less than `renew_after_s` after the claim: the claim just taken covers it (app.py
    sets `renew_after_s` to the lease minus the sink timeout, with a margin), which saves a
    round trip per claim (for a batched sink, usually its only chunk); 0 always renews.

    Rows whose sink is `batched` go out in chunks of `chunk_size` (one broker round trip
    per chunk instead of per row); others one by one. `keepalive`, if given, is called
    between chunks and sends (the single-threaded relay keeps the input connection's
    heartbeats going with it; a relay on its own thread must not be given one). A lost
    connection (BrokerError) or database (StoreError) propagates: rows not yet tried are
    handed back, the one in flight stays claimed until its lease ends. Any other exception
    from a sink (a bug, a full disk) is a failed attempt of the row(s) it concerns, retried
    with backoff like DeliveryFailed and logged with the job id: it never ends the loop. A row
    that cannot be encoded (MessageNotEncodable) or that its target refuses
    (SubmissionRejected) fails at once, alone.

    `vias` / `exclude_vias` restrict which rows this relay claims (one relay per target);
    `should_stop` is asked between sends, and the rows not yet tried are then handed back.
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
        metrics: Metrics | None = None,
        vias: Collection[str] | None = None,
        exclude_vias: Collection[str] = (),
        should_stop: Callable[[], bool] = lambda: False,
        renew_after_s: float = 0.0,
        throttle: Throttle | None = None,
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
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.vias = None if vias is None else frozenset(vias)
        self.exclude_vias = frozenset(exclude_vias)
        self.should_stop = should_stop
        self.renew_after_s = max(0.0, min(renew_after_s, lease_s))
        self._claimed_at = clock()
        self._fresh_claim = False
        self.throttle = throttle  # back-pressure: which claimed rows may go now (see throttle)

    def relays(self, via: str) -> bool:
        """Whether rows of `via` are this relay's to claim (`vias` / `exclude_vias`)."""
        return (self.vias is None or via in self.vias) and via not in self.exclude_vias

    def holds_rows(self) -> bool:
        """Whether a throttle with limits may hold rows back: they come due again on a timer,
        not when a batch queues rows, so such a relay is woken after every batch."""
        return self.throttle is not None and bool(self.throttle.limits())

    def run_once(self, limit: int = 500) -> RelayStats:
        """Claim up to `limit` due rows and try each once."""
        self._claimed_at = self.clock()  # no later than the store's own `now` of the claim
        self._fresh_claim = True
        rows: list[OutboxRow] = self.store.claim_due(
            limit, self.lease_s, vias=self.vias, exclude_vias=self.exclude_vias
        )
        stats = RelayStats(more=len(rows) >= limit)
        if self.throttle is not None:
            rows = self.throttle.admit(rows)  # the others are held, pending, as throttled
        by_via: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_via.setdefault(row.submission.via, []).append(row)
        untried = {row.submission.job_id: row for row in rows}
        try:
            for via, group in by_via.items():
                for batch in self._batches(via, group):
                    if self.should_stop():
                        self._release(list(untried.values()))
                        return stats
                    for row in batch:
                        del untried[row.submission.job_id]
                    self._relay(via, batch, stats)
                    self._keepalive()
        except CONNECTION_LOST:
            self._release(list(untried.values()))
            raise
        return stats

    def drain(self, limit: int = 500, max_rounds: int = 1000) -> RelayStats:
        """Run until no due row is left (or `max_rounds`); for tools and tests."""
        total = RelayStats()
        for _ in range(max_rounds):
            stats = self.run_once(limit)
            total.sent += stats.sent
            total.retried += stats.retried
            total.failed += stats.failed
            total.lost += stats.lost
            if not stats.more:
                break
        return total

    # --- one batch -----------------------------------------------------------------------------

    def _batches(self, via: str, group: list[OutboxRow]) -> list[list[OutboxRow]]:
        """Chunks for a batch sink, single rows otherwise (each sent under a renewed claim)."""
        sink = self.sinks.get(via)
        size = self.chunk_size if sink is not None and sink.batched else 1
        return [group[start : start + size] for start in range(0, len(group), size)]

    def _relay(self, via: str, batch: list[OutboxRow], stats: RelayStats) -> None:
        sink = self.sinks.get(via)
        if sink is None:
            for row in batch:
                self._record(row, f"no sink configured for via={via}", False, stats)
            return
        held = self._still_held(batch, stats)
        if not held:
            return
        answers: dict[str, str] = {}
        if sink.batched:
            results = self._send_many(sink, held)
        else:
            results = [(row, self._send_one(sink, row, answers)) for row in held]
        delivered = [row for row, error in results if error is None]
        marked = set()
        if delivered:  # (answers only when there are some: stores may not take them)
            marked = (
                self.store.mark_sent_many(delivered, answers)
                if answers
                else self.store.mark_sent_many(delivered)
            )
        for row, error in results:
            if error is None:
                self._sent(row, row.submission.job_id in marked, stats)
            else:
                self._failed(row, error, stats)

    def _still_held(self, batch: list[OutboxRow], stats: RelayStats) -> list[OutboxRow]:
        """Renew the claim on `batch`; the rows still ours. The others are not sent."""
        token = batch[0].claim_token
        if token is None:  # rows that were not claimed (a store without claims): unfenced
            return batch
        fresh, self._fresh_claim = self._fresh_claim, False
        if fresh and (self.clock() - self._claimed_at).total_seconds() < self.renew_after_s:
            return batch  # the first send after the claim: the claim just taken covers it
        ids = [row.submission.job_id for row in batch]
        held = self.store.renew_claims(ids, token, self.lease_s)
        for row in batch:
            if row.submission.job_id not in held:
                stats.lost += 1
                log.warning(
                    "claim on a submission was lost before sending (another relay holds it); "
                    "not sending it",
                    extra={"job_id": row.submission.job_id, "target": row.submission.extractor},
                )
        return [row for row in batch if row.submission.job_id in held]

    def _send_one(self, sink: Sink, row: OutboxRow, answers: dict[str, str]) -> Exception | None:
        """Send one row; a job id the target answers with (Clowder's) goes into `answers`."""
        try:
            answer = sink.send(row)
        except CONNECTION_LOST:
            raise
        except Exception as exc:  # any other failure is this row's failed attempt
            return exc
        if isinstance(answer, str) and answer:
            answers[row.submission.job_id] = answer
        return None

    def _send_many(self, sink: Sink, chunk: Sequence[OutboxRow]) -> list[SendResult]:
        """The sink's per-row results; an unexpected error of the whole call fails every row."""
        try:
            return list(sink.send_many(chunk))
        except CONNECTION_LOST:
            raise
        except Exception as exc:  # a bug in the sink: each row's attempt failed, retried later
            return [(row, exc) for row in chunk]

    # --- outcomes ------------------------------------------------------------------------------

    def _sent(self, row: OutboxRow, marked: bool, stats: RelayStats) -> None:
        facts = {
            "job_id": row.submission.job_id,
            "rule": row.submission.rule,
            "target": row.submission.extractor,
            "via": row.submission.via,
        }
        if not marked:
            stats.lost += 1
            log.warning(
                "submission sent, but its claim passed to another relay before it was marked "
                "sent; that relay may send it again (a sink slower than the lease)",
                extra=facts,
            )
            return
        stats.sent += 1
        self._count(row, "sent")
        log.info("submitted", extra=facts)

    def _failed(self, row: OutboxRow, error: Exception, stats: RelayStats) -> None:
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
        recorded = self.store.mark_attempt_failed(
            row.submission.job_id, error, retry_at, give_up, claim_token=row.claim_token
        )
        if not recorded:
            stats.lost += 1
            log.warning(
                "claim on a submission was lost before its failed attempt was recorded; "
                "the relay holding it now decides",
                extra={"job_id": row.submission.job_id, "error": error},
            )
            return
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

    def _release(self, rows: Sequence[OutboxRow]) -> None:
        """Hand back claimed rows that were not tried, so they are due again at once."""
        by_token: dict[str, list[str]] = {}
        for row in rows:
            if row.claim_token is not None:
                by_token.setdefault(row.claim_token, []).append(row.submission.job_id)
        try:
            for token, ids in by_token.items():
                self.store.release_claims(ids, token)
        except StoreError as exc:  # they come due when their claim ends instead
            log.info("could not hand back %d claimed submissions: %s", len(rows), exc)

    def _count(self, row: OutboxRow, status: str) -> None:
        self.metrics.submission(row.submission.extractor, status)

    def _keepalive(self) -> None:
        if self.keepalive is not None:
            self.keepalive()
