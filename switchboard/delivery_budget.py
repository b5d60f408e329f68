"""How many deliveries the input consumer may hold, so their bodies stay within a byte budget.

RabbitMQ limits a consumer by message count only (`prefetch_size` is not implemented), so
the bytes pika reads in are at most prefetch x body size. The budget keeps that product under
`max_unacked_bytes`: the starting prefetch is what the budget allows for bodies of the largest
size we process (`max_event_bytes`); a body over that size (which is dead-lettered on arrival)
drops the prefetch to 1 while such bodies keep coming, and it doubles back with every window
of ordinary ones. Held bytes over the budget pause the consumer until half of them are settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DeliveryBudget:
    """Bookkeeping of unsettled deliveries' bytes and the prefetch the consumer should have."""

    max_bytes: int
    max_event_bytes: int
    max_prefetch: int
    prefetch: int = field(init=False)
    held_bytes: int = field(init=False, default=0)
    _held: dict[int, int] = field(init=False, default_factory=dict)
    _seen: int = field(init=False, default=0)  # ordinary deliveries since the last oversized
    _oversized_seen: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        allowed = self.max_bytes // max(1, self.max_event_bytes)
        self.max_prefetch = max(1, min(self.max_prefetch, allowed))
        self.prefetch = self.max_prefetch

    def received(self, delivery_tag: int, size_bytes: int) -> bool:
        """Count a delivery's body; whether it is oversized (to be dead-lettered at once)."""
        self._held[delivery_tag] = size_bytes
        self.held_bytes += size_bytes
        oversized = size_bytes > self.max_event_bytes
        if oversized:
            self._oversized_seen = True
            self._seen = 0
        else:
            self._seen += 1
        return oversized

    def settled(self, delivery_tag: int, *, multiple: bool = False) -> None:
        """Stop counting `delivery_tag` (and, with `multiple`, every lower tag)."""
        tags = [t for t in self._held if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            self.held_bytes -= self._held.pop(tag, 0)

    def forget_all(self) -> None:
        """Every unsettled delivery went back to the queue (nack, lost connection)."""
        self._held.clear()
        self.held_bytes = 0

    def started(self, prefetch: int) -> None:
        """A consumer started with `prefetch`: a new window of observations begins."""
        self.prefetch = prefetch
        self._seen = 0
        self._oversized_seen = False

    @property
    def over(self) -> bool:
        """Whether the consumer must pause: the unsettled bodies exceed the budget."""
        return self.held_bytes > self.max_bytes

    @property
    def room_to_resume(self) -> bool:
        return self.held_bytes <= self.max_bytes // 2

    def wanted_prefetch(self) -> int:
        """1 once an oversized body arrived; doubled (up to the maximum) after a full window
        of ordinary ones since the last oversized one, once all are settled; otherwise the
        current prefetch.

        A consumer's unacked deliveries stop counting against the prefetch of the consumer
        that replaces it, so the prefetch is only raised when nothing is held.
        """
        if self._oversized_seen and self.prefetch > 1:
            return 1
        if self.prefetch < self.max_prefetch and self._seen >= self.prefetch and not self._held:
            return min(self.max_prefetch, self.prefetch * 2)
        return self.prefetch
