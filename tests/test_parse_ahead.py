"""Readings kept for a batch: taken once, by that very delivery, and never kept forever."""

from __future__ import annotations

from switchboard.parse_ahead import ParseAhead
from switchboard.ports import Delivery
from switchboard.testing import ListDelivery


class CountingReader:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, delivery: Delivery) -> str:
        self.calls.append(delivery.delivery_tag)
        return f"read {delivery.delivery_tag} #{len(self.calls)}"


def test_a_delivery_read_ahead_is_not_read_again_when_taken() -> None:
    reader = CountingReader()
    ahead = ParseAhead(reader)
    delivery = ListDelivery(1, b"{}")
    ahead.add(delivery)
    assert ahead.take(delivery) == "read 1 #1"
    assert reader.calls == [1]
    assert len(ahead) == 0


def test_a_delivery_never_read_ahead_is_read_when_taken() -> None:
    reader = CountingReader()
    ahead = ParseAhead(reader)
    assert ahead.take(ListDelivery(7, b"{}")) == "read 7 #1"


def test_an_equal_but_different_delivery_does_not_get_anothers_reading() -> None:
    reader = CountingReader()
    ahead = ParseAhead(reader)
    first, again = ListDelivery(1, b"{}"), ListDelivery(1, b"{}")
    ahead.add(first)
    assert ahead.take(again) == "read 1 #2"  # read for itself
    assert ahead.take(first) == "read 1 #1"  # the kept reading is still its own


def test_a_reading_is_taken_once() -> None:
    reader = CountingReader()
    ahead = ParseAhead(reader)
    delivery = ListDelivery(3, b"{}")
    ahead.add(delivery)
    ahead.take(delivery)
    assert ahead.take(delivery) == "read 3 #2"


def test_readings_never_dispatched_are_dropped_after_keep_batches() -> None:
    ahead = ParseAhead(CountingReader(), keep_batches=2)
    orphan, recent = ListDelivery(1, b"{}"), ListDelivery(2, b"{}")
    ahead.add(orphan)
    ahead.next_batch()
    ahead.add(recent)
    ahead.next_batch()
    assert len(ahead) == 2  # the orphan is 2 batches old: kept
    ahead.next_batch()
    assert len(ahead) == 1  # 3 batches old: dropped; the recent one stays
    assert ahead.take(recent) == "read 2 #2"
