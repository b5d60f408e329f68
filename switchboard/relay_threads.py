"""The relay on threads of its own, one per target, so a slow target delays only its own rows."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from .errors import BrokerError, StoreError
from .interpreter import SWITCH_INTERVAL_S
from .relay import Relay

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 1.0  # how often an idle worker looks for rows that came due (retries, leases)
MAX_BACKOFF_S = 30.0


@dataclass
class RelayWorker:
    """One relay thread: `relay` claims only its target's rows; `idle` runs between rounds on
    the same thread (the sink answering its own connection's heartbeats). `wake_event` asks
    for a round; `hurry_event` asks for it without waiting out the backlog gap."""

    name: str
    relay: Relay
    idle: Callable[[], None] | None = None
    wake_event: threading.Event = field(default_factory=threading.Event)
    hurry_event: threading.Event = field(default_factory=threading.Event)


class RelayThreads:
    """Run each worker's relay on its own thread; the daemon only wakes them after a commit.

    The daemon's intake stays on its one thread with the input connection: a worker never
    touches it (pika is not thread-safe), each sink has a connection of its own. A hung
    target holds up only its worker, bounded by that sink's timeout, which is shorter than
    the claim on its rows. A lost connection or database backs the worker off (0.5 s
    doubling to 30 s) and it tries again; any other error is logged and the loop goes on.
    Threads start on the first `wake()`; `close()` stops them after their current send.

    While the input has a backlog, a worker starts a round at most every `backlog_gap_s`, so
    one claim and one mark carry the rows of several batches: over half of a 24-row round's
    CPU was the round's own (its statements and round trips), and under saturation every round
    the relay skips is time the intake has for events. A wake without a backlog (a quiet
    queue) is relayed at once.
    """

    def __init__(
        self,
        workers: Sequence[RelayWorker],
        *,
        poll_s: float = DEFAULT_POLL_S,
        backlog_gap_s: float = 0.0,
    ) -> None:
        self.workers = list(workers)
        self.poll_s = poll_s
        self.backlog_gap_s = max(0.0, backlog_gap_s)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for worker in self.workers:
            worker.relay.should_stop = self._stop.is_set

    def wake(self, vias: Collection[str] | None = None, *, backlog: bool = False) -> None:
        """Have the workers relaying rows of `vias` (every worker: None) look for due rows now
        (starting the threads the first time). A worker not woken still looks every `poll_s`;
        waking only those with new rows spares the others an empty claim per batch. While
        limits may hold rows back (throttled rows come due on a timer) every worker is woken.
        With `backlog` (the batch that queued the rows was full: more events are waiting) a
        worker that started a round less than `backlog_gap_s` ago waits out the rest first."""
        everyone = vias is None or any(worker.relay.holds_rows() for worker in self.workers)
        for worker in self.workers:
            if everyone or any(worker.relay.relays(via) for via in vias or ()):
                if not backlog:
                    worker.hurry_event.set()
                worker.wake_event.set()
        if not self._threads and not self._stop.is_set():
            self._start()  # (after the wake: each thread's first round is that wake's)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the workers and wait up to `timeout_s` for the send each has in hand."""
        self._stop.set()
        for worker in self.workers:
            worker.hurry_event.set()
            worker.wake_event.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("relay thread %s still sending at shutdown; leaving it", thread.name)

    def _start(self) -> None:
        # a relay round is a string of short waits, each followed by a wait for the GIL: see
        # `interpreter` (`switchboard run` has set this already; embedders get it here)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        for worker in self.workers:
            thread = threading.Thread(
                target=self._run, args=(worker,), name=f"relay-{worker.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, worker: RelayWorker) -> None:
        delay_s = 0.0
        while not self._stop.is_set():
            worker.wake_event.clear()
            worker.hurry_event.clear()
            started = time.monotonic()
            try:
                stats = worker.relay.run_once()
            except (BrokerError, StoreError) as exc:
                delay_s = min(MAX_BACKOFF_S, delay_s * 2 or 0.5)
                log.warning(
                    "relay for %s lost a connection (%s); retrying in %.1f s",
                    worker.name,
                    exc,
                    delay_s,
                )
                self._stop.wait(delay_s)
                continue
            except Exception:  # a bug must not end the worker: its rows would never go out
                log.exception("relay for %s failed; trying again", worker.name)
                self._stop.wait(self.poll_s)
                continue
            delay_s = 0.0
            if stats.more:
                continue
            self._idle(worker)
            worker.wake_event.wait(self.poll_s)
            self._wait_out_gap(worker, started)

    def _wait_out_gap(self, worker: RelayWorker, started: float) -> None:
        """Hold a backlog's wake until `backlog_gap_s` after the last round started; a wake
        without a backlog (or `close`) ends the wait at once."""
        remaining_s = started + self.backlog_gap_s - time.monotonic()
        if remaining_s > 0:
            worker.hurry_event.wait(remaining_s)

    def _idle(self, worker: RelayWorker) -> None:
        if worker.idle is None:
            return
        try:
            worker.idle()
        except Exception as exc:  # keeping a connection alive is best effort
            log.info("relay for %s: idle keepalive failed: %s", worker.name, exc)
