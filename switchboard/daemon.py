"""The daemon's main loop: batches in, state committed, acks out, outbox relayed, never dying."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import BrokerError, RuleLoadError, StoreError
from .intake import BatchResult
from .ports import Delivery, Metrics, NullMetrics, Source
from .relay import Relay
from .relay_threads import RelayThreads

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Exponential backoff between reconnection attempts: 0.5 s doubling up to `max_s`."""

    initial_s: float = 0.5
    max_s: float = 30.0
    current_s: float = field(init=False, default=0.0)

    def next_delay_s(self) -> float:
        self.current_s = (
            self.initial_s if not self.current_s else min(self.max_s, self.current_s * 2)
        )
        return self.current_s

    def reset(self) -> None:
        self.current_s = 0.0


class Intake(Protocol):
    """What turns a batch of deliveries into a `BatchResult` (an `intake.Router`, or a
    `Processor`, which routes events only)."""

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult: ...


class Daemon:
    """Consume batches from `source`, dispatch them through `intake` (the message router),
    ack, then relay.

    `reload_rules` is called on a reload request (see `request_reload`).

    Every step that can lose a connection raises BrokerError or StoreError; the loop backs off,
    reconnects and carries on, so only a stop request ends it. Nothing is acked before its
    state is committed: an interrupted batch is redelivered by the broker.
    """

    def __init__(
        self,
        source: Source[Any],
        intake: Intake,
        relay: Relay | RelayThreads,
        *,
        batch_size: int = 200,
        batch_wait_s: float = 0.05,
        heartbeat: Callable[[], object] | None = None,
        heartbeat_interval_s: float = 300.0,
        reload_rules: Callable[[], object] | None = None,
        backoff: Backoff | None = None,
        periodic: Sequence[Callable[[], None]] = (),
        metrics: Metrics | None = None,
        relay_rounds: int = 10,
        on_turn: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.intake = intake
        self.relay = relay
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.heartbeat = heartbeat
        self.heartbeat_interval_s = heartbeat_interval_s
        self.reload_rules = reload_rules
        self.backoff = backoff or Backoff()
        self.periodic = list(periodic)
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.relay_rounds = max(1, relay_rounds)
        self.on_turn = on_turn  # told every time the loop comes round (health checks read it)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._next_heartbeat = 0.0

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and return (safe from a signal handler)."""
        self._stop.set()

    def request_reload(self) -> None:
        """Reload rules before the next batch; a broken rule set keeps the last good one."""
        self._reload.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        """Loop until stopped; returns the process exit code.

        0 after a stop request. Any exception other than a lost connection is a bug: it is
        logged with its traceback, the source is closed (unacked work goes back to the queue)
        and 1 is returned, so the process ends non-zero and its supervisor restarts it
        instead of it lingering without a consumer.
        """
        log.info("switchboard daemon started")
        code = 0
        try:
            self._loop()
        except Exception:
            log.exception("switchboard daemon failed; stopping")
            code = 1
        finally:
            self._shutdown()
        log.info("switchboard daemon stopped")
        return code

    def _loop(self) -> None:
        while not self.stopping:
            try:
                self._run_batches()
            except (BrokerError, StoreError) as exc:
                if self._stop.is_set():  # (not `stopping`: mypy would narrow it to False)
                    break
                delay_s = self.backoff.next_delay_s()
                log.warning("connection lost (%s); retrying in %.1f s", exc, delay_s)
                self._stop.wait(delay_s)
                self._turned()
                self._reconnect()

    def _run_batches(self) -> None:
        for batch in self.source.batches(self.batch_size, self.batch_wait_s):
            self._turned()
            if self.stopping:
                return  # the batch in hand is unacked: source.stop() hands it back
            self._maybe_reload()
            self._maybe_heartbeat()
            result = self.handle(batch) if batch else None
            self.relay_pending(result, backlog=len(batch) >= self.batch_size)
            self.run_periodic()
            self.backoff.reset()

    def handle(self, batch: Sequence[Delivery]) -> BatchResult:
        """Commit one batch, dead-letter or delay what must not be committed, then ack.

        Moved deliveries (dead-lettered, delayed) are acked one by one by the source once
        their copy is confirmed; everything else is acked with one `multiple` ack up to the
        highest remaining tag, and only after the commit.
        """
        started = time.monotonic()
        result = self.intake.process(batch)
        self._keepalive()
        moved: set[int] = set()
        for delivery, reason in result.malformed + result.poison:
            self.source.dead_letter(delivery, reason)
            moved.add(delivery.delivery_tag)
        for delivery, reason in result.delayed:
            self.source.delay(delivery, reason)
            moved.add(delivery.delivery_tag)
        remaining = [d.delivery_tag for d in batch if d.delivery_tag not in moved]
        if remaining:
            self.source.ack_through(max(remaining))
        duration_s = time.monotonic() - started
        self._count_batch(batch, result, duration_s)
        log.info(
            "batch",
            extra={
                "events": len(batch),
                # `committed` includes already-seen messages; `new` are the first-time events
                "new": len(result.committed) - result.duplicates,
                "duplicates": result.duplicates,
                "submissions": len(result.submissions),
                "dead_lettered": len(result.malformed) + len(result.poison),
                "delayed": len(result.delayed),
                "rule_errors": len(result.rule_errors),
                "duration_ms": round(duration_s * 1000, 1),
            },
        )
        for rule, message_id, error in result.rule_errors:
            log.warning(
                "rule failed", extra={"rule": rule, "message_id": message_id, "error": error}
            )
        return result

    def relay_pending(self, result: BatchResult | None = None, *, backlog: bool = False) -> None:
        """Relay due outbox rows, a few rounds at most so the input is never left waiting.

        A relay on threads of its own (RelayThreads, what `switchboard run` uses) is only woken:
        sending never happens on this thread, so a hung target cannot hold up intake. After a
        batch (`result`) only the threads of the vias it queued rows for are woken; after an
        empty one (None: idle, or rows queued by periodic hooks) all of them. `backlog` (the
        batch was full) lets them gather several batches' rows into one round.
        """
        if isinstance(self.relay, RelayThreads):
            self.relay.wake(None if result is None else result.vias(), backlog=backlog)
            return
        for _ in range(self.relay_rounds):
            stats = self.relay.run_once()
            if not stats.more or self.stopping:
                return
            self._keepalive()

    def run_periodic(self) -> None:
        """Call each periodic hook once; connection losses reconnect, other errors are logged."""
        for hook in self.periodic:
            try:
                hook()
            except (BrokerError, StoreError):
                raise
            except Exception:  # a broken hook must not stop the daemon; it runs again next loop
                name = getattr(hook, "__name__", repr(hook))  # a callable, not a port
                log.exception("periodic task %s failed", name)
            self._keepalive()

    def _keepalive(self) -> None:
        self.source.keepalive()

    def _turned(self) -> None:
        if self.on_turn is not None:
            self.on_turn()

    def _count_batch(
        self, batch: Sequence[Delivery], result: BatchResult, duration_s: float
    ) -> None:
        metrics = self.metrics
        metrics.batch(len(batch), result.duplicates, duration_s)
        metrics.dead_lettered("malformed", len(result.malformed))
        metrics.dead_lettered("poison", len(result.poison))
        metrics.delayed_events(len(result.delayed))
        for submission in result.submissions:
            metrics.submission(submission.extractor, "queued")
        metrics.rule_outcomes(
            result.matched_rules, [(rule, error) for rule, _, error in result.rule_errors]
        )

    def _maybe_heartbeat(self) -> None:
        if self.heartbeat is None or time.monotonic() < self._next_heartbeat:
            return
        try:
            self.heartbeat()
        finally:
            self._next_heartbeat = time.monotonic() + self.heartbeat_interval_s

    def _maybe_reload(self) -> None:
        if not self._reload.is_set() or self.reload_rules is None:
            return
        self._reload.clear()
        try:
            self.reload_rules()
            log.info("rules reloaded")
        except RuleLoadError as exc:
            log.error("rules not reloaded, keeping the last good ones:\n%s", exc)
        except Exception:  # whatever loading raises, a reload must never end the loop
            log.exception("rules not reloaded (unexpected error), keeping the last good ones")

    def _reconnect(self) -> None:
        try:
            self.source.reconnect()
        except BrokerError as exc:
            log.warning("reconnect failed: %s", exc)

    def _shutdown(self) -> None:
        try:
            self.source.stop()
        except BrokerError as exc:
            log.warning("closing the source failed: %s", exc)
