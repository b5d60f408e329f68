"""The job poller on a thread of its own, so asking Ray or Clowder never holds up intake."""

from __future__ import annotations

import logging
import threading

from ..errors import StoreError
from .poller import JobPoller

log = logging.getLogger(__name__)

MAX_STORE_BACKOFF_S = 60.0


class PollerThread:
    """Runs `poller.poll_once()` every `poller.interval_s` on a daemon thread.

    `start()` is idempotent (the daemon's loop calls it as a periodic hook, so the thread
    starts only when the daemon runs, never when it is built). A database outage backs the
    thread off (doubling to a minute); any other error is logged and the next round goes on.
    `close()` stops it after the request in hand and gives the lease up.
    """

    def __init__(self, poller: JobPoller) -> None:
        self.poller = poller
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        poller.should_stop = self._stop.is_set

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="job-poller", daemon=True)
            self._thread.start()

    __call__ = start  # as a periodic hook

    @property
    def running(self) -> bool:
        """Whether the thread is polling (started and not yet ended)."""
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("job poller still asking at shutdown; leaving it")
                return
        try:
            self.poller.close()
        except StoreError as exc:
            log.info("job poller: could not give its lease up (%s); it ends by itself", exc)

    def _run(self) -> None:
        delay_s = 0.0
        while not self._stop.is_set():
            try:
                self.poller.poll_once()
            except StoreError as exc:
                delay_s = min(MAX_STORE_BACKOFF_S, delay_s * 2 or self.poller.interval_s)
                log.warning(
                    "job poller: database unreachable (%s); retrying in %.0f s", exc, delay_s
                )
                self._stop.wait(delay_s)
                continue
            except Exception:  # a bug must not end polling for good
                log.exception("job poller round failed; trying again")
            delay_s = 0.0
            self._stop.wait(self.poller.interval_s)
