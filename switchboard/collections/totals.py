"""Calls the Python callable a `fraction: {of: {python: ...}}` names, caching results briefly."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..rules.collect import RenderedCall
from .callables import resolve

__all__ = ["CACHE_S", "Totals", "count_files", "resolve"]

CACHE_S = 1.0


class Totals:
    """Expected totals from callables, each resolved once and its result kept for `CACHE_S`
    (a batch of members of one day asks once, not once per member)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._results: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._clock = clock

    def total(self, call: RenderedCall) -> int:
        """The callable's result as a whole number; raises whatever it raises.

        The callable is the one rule loading resolved (and checked against the allowlist), so
        nothing is imported here.
        """
        key = (call.target, call.base_dir, _frozen(call.args))
        now = self._clock()
        cached = self._results.get(key)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        value = call.function(**dict(call.args))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{call.target} returned {value!r}, not a number")
        self._results[key] = (now, int(value))
        return int(value)


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def count_files(directory: str, suffix: str = "") -> int:
    """How many entries of `directory` end with `suffix` (the original rulechecker's
    `ls <raw_data>/<sensor>/<date> | wc -l`); 0 when the folder does not exist."""
    try:
        with os.scandir(directory) as entries:
            return sum(1 for e in entries if e.name.endswith(suffix))
    except FileNotFoundError:
        return 0
