"""Deliveries read (routed and parsed) while the source still waits for the rest of their
batch, kept until the router dispatches them.

Under a backlog the intake thread spends part of every cycle waiting for the broker to send
the deliveries an ack made room for; reading the ones already in during that wait takes their
parsing off the serial path. The store is only a cache: a delivery not found in it (never
read ahead, or dropped) is read again when its batch is dispatched, with the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from .ports import Delivery

T = TypeVar("T")

KEEP_BATCHES = 8  # a reading not dispatched within this many batches is an orphan


class Reading(NamedTuple):
    """Which route takes a delivery and what it parsed into, or why it is malformed."""

    route: int | None
    message: Any
    malformed: str | None


class ParseAhead(Generic[T]):
    """Readings by delivery, kept for `keep_batches` batches at most.

    Entries are keyed by the delivery's identity and hold the delivery itself, so an id can
    never be reused while its entry lives. A delivery that never reaches a batch (its
    connection was lost, the broker sends it again as a new delivery) leaves an orphan, which
    `next_batch` drops once it is `keep_batches` old.
    """

    def __init__(self, read: Callable[[Delivery], T], keep_batches: int = KEEP_BATCHES) -> None:
        self._read = read
        self._keep_batches = keep_batches
        self._batch = 0
        self._readings: dict[int, tuple[Delivery, int, T]] = {}

    def __len__(self) -> int:
        return len(self._readings)

    def add(self, delivery: Delivery) -> None:
        """Read `delivery` now and keep the reading for its batch."""
        self._readings[id(delivery)] = (delivery, self._batch, self._read(delivery))

    def take(self, delivery: Delivery) -> T:
        """The reading of `delivery`: the one kept for it, else read now."""
        kept = self._readings.pop(id(delivery), None)
        if kept is not None and kept[0] is delivery:
            return kept[2]
        return self._read(delivery)

    def next_batch(self) -> None:
        """Count one dispatched batch; drop readings `keep_batches` batches old."""
        self._batch += 1
        oldest = self._batch - self._keep_batches
        stale = [key for key, (_, batch, _) in self._readings.items() if batch < oldest]
        for key in stale:
            del self._readings[key]
