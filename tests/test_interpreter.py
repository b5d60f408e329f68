"""The daemon's interpreter settings: survivors of startup frozen, young collections spaced,
the GIL handed on sooner."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from switchboard import interpreter


@pytest.fixture(autouse=True)
def restored_collector() -> Iterator[None]:
    """Each test leaves the test process's collector as it found it."""
    threshold, interval_s = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval_s)


class _Node:
    """A weak-referenceable object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settling_freezes_what_is_alive_and_spaces_young_collections() -> None:
    survivor = _Node()
    interpreter.settle(young_threshold=12_345)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 12_345
    assert gc.is_tracked(survivor)
    assert survivor not in gc.get_objects()  # frozen objects are out of every generation


def test_the_default_young_threshold_is_a_batch_worth_not_cpythons_700() -> None:
    interpreter.settle()
    assert gc.get_threshold()[0] == interpreter.YOUNG_THRESHOLD > 700


def test_the_gil_is_handed_on_sooner_than_cpythons_default() -> None:
    interpreter.settle(switch_interval_s=0.002)
    assert sys.getswitchinterval() == pytest.approx(0.002)
    interpreter.settle()
    assert sys.getswitchinterval() == pytest.approx(interpreter.SWITCH_INTERVAL_S)
    assert interpreter.SWITCH_INTERVAL_S < 0.005


def unreachable_cycle() -> weakref.ref[_Node]:
    """Two objects referring to each other and to nothing else; a weak reference to one."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_a_cycle_made_after_settling_is_still_collected() -> None:
    interpreter.settle()
    gone = unreachable_cycle()
    gc.collect()
    assert gone() is None


def test_garbage_left_from_startup_is_collected_not_frozen() -> None:
    gc.disable()  # so nothing but settle() collects the cycle
    try:
        gone = unreachable_cycle()
        interpreter.settle()
        assert gone() is None
    finally:
        gc.enable()
