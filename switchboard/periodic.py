"""The daemon's periodic sweeps: called every loop, each sweeps at most once per interval."""

from __future__ import annotations

import time
from collections.abc import Callable


class PeriodicSweep:
    """A daemon periodic hook that runs `sweep()` at most once per `interval_s`, taking up to
    `limit` rows a sweep; subclasses say what a sweep does."""

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        limit: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.limit = limit
        self._monotonic = monotonic
        self._next_at = 0.0

    def __call__(self) -> None:
        """Sweep, at most once per `interval_s` (the daemon calls this every loop)."""
        now = self._monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self.interval_s
        self.sweep()

    def sweep(self) -> object:
        """One sweep; what it did, for tests and callers that sweep by hand."""
        raise NotImplementedError
