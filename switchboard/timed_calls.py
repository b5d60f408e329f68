"""Wrappers that time outside calls (sink sends, dataset-name lookups) into a latency histogram."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .model import Event
from .ports import OutboxRow, SendResult, Sink

Observe = Callable[[str, str, float], None]  # (call, outcome, seconds), e.g. Metrics.call


class TimedSink(Sink):
    """A sink whose every send (or chunk of sends) is timed under `call` (its via)."""

    def __init__(self, inner: Sink, call: str, observe: Observe) -> None:
        self.inner = inner
        self.call = call
        self.observe = observe
        self.batched = inner.batched

    def send(self, row: OutboxRow) -> object:
        started = time.monotonic()
        outcome = "error"
        try:
            result = self.inner.send(row)
            outcome = "ok"
            return result
        finally:
            self.observe(self.call, outcome, time.monotonic() - started)

    def send_many(self, rows: Sequence[OutboxRow]) -> list[SendResult]:
        started = time.monotonic()
        outcome = "error"
        try:
            results = self.inner.send_many(rows)
            outcome = "ok" if all(error is None for _, error in results) else "error"
            return results
        finally:
            self.observe(self.call, outcome, time.monotonic() - started)

    def keepalive(self) -> None:
        self.inner.keepalive()

    def close(self) -> None:
        self.inner.close()


class TimedDatasetNames:
    """A `ports.DatasetNames` whose lookups are timed (as the processor waits for them)."""

    call = "clowder-dataset-name"

    def __init__(self, inner: Any, observe: Observe) -> None:
        self.inner = inner
        self.observe = observe

    def dataset_name(self, dataset_id: str, event: Event | None = None) -> str:
        started = time.monotonic()
        outcome = "error"
        try:
            name: str = self.inner.dataset_name(dataset_id, event)
            outcome = "ok"
            return name
        finally:
            self.observe(self.call, outcome, time.monotonic() - started)


def timed_sinks(sinks: dict[str, Sink], metrics: Any) -> dict[str, Sink]:
    """Each sink's sends timed under its via (`metrics`: a `Metrics`, or None for untimed)."""
    if metrics is None:
        return sinks
    return {via: TimedSink(sink, via, metrics.call) for via, sink in sinks.items()}


def timed_names(lookup: Any, metrics: Any) -> Any:
    """The dataset-name lookup, timed (`metrics`: a `Metrics`, or None for untimed)."""
    return lookup if metrics is None else TimedDatasetNames(lookup, metrics.call)
