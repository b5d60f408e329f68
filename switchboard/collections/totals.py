"""Resolves and calls the Python callable a `fraction: {of: {python: ...}}` names."""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .spec import RenderedCall

CACHE_S = 1.0


def resolve(target: str, base_dir: str = "") -> Callable[..., Any]:
    """`module:function`, or `file.py:function` relative to the rule file's folder."""
    module_name, _, function_name = target.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_absolute():
            path = Path(base_dir) / path
        spec = importlib.util.spec_from_file_location(f"_switchboard_total_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ImportError(f"{target}: {function_name!r} is not a callable in {module_name}")
    return function


class Totals:
    """Expected totals from callables, each resolved once and its result kept for `CACHE_S`
    (a batch of members of one day asks once, not once per member)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._functions: dict[tuple[str, str], Callable[..., Any]] = {}
        self._results: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._clock = clock

    def total(self, call: RenderedCall) -> int:
        """The callable's result as a whole number; raises whatever it raises."""
        key = (call.target, call.base_dir, _frozen(call.args))
        now = self._clock()
        cached = self._results.get(key)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        where = (call.target, call.base_dir)
        function = self._functions.get(where)
        if function is None:
            function = self._functions[where] = resolve(call.target, call.base_dir)
        value = function(**dict(call.args))
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
