"""Fires `quiet_for` collections whose quiet deadline has passed, also after downtime.

Deadlines live in the database, so a deadline that passed while no daemon ran fires on the
first sweep after a start. Due collections are locked with SKIP LOCKED, so several daemons
sweeping at once take disjoint ones, and `mark_fired` keeps the firing exactly once anyway.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ..events import parse_event
from ..model import SubmitRequest, plain_runtime_env
from ..store.progress import CollectionState
from .firing import Firing, holds
from .spec import Collected

log = logging.getLogger(__name__)


class Sweeper:
    """A daemon periodic hook over one Processor (its store, current rules and collector)."""

    def __init__(
        self,
        processor: Any,
        *,
        interval_s: float = 1.0,
        limit: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
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

    def sweep(self) -> list[Firing]:
        """Fire every due collection whose other conditions hold; one transaction."""
        fired: list[Firing] = []
        with self.processor.store.unit_of_work() as uow:
            progress = uow.progress
            for state in progress.quiet_due(uow.now(), self.limit):
                firing = self._settle(uow, state)
                if firing is not None:
                    fired.append(firing)
        return fired

    def _settle(self, uow: Any, state: CollectionState) -> Firing | None:
        rule = self.processor.engine.rules.get(state.rule)
        spec = rule.collect if rule is not None else None
        if spec is None or spec.until.quiet_for is None or not state.trigger:
            uow.progress.clear_deadline(state.rule, state.key)  # the rule changed or went away
            return None
        trigger = state.trigger
        all_of = frozenset(trigger.get("all_of") or ())
        ready = holds(
            spec.until,
            state.count,
            state.expected,
            lambda: uow.progress.has_all(state.rule, state.key, state.generation, all_of),
        )
        if not ready:
            uow.progress.clear_deadline(state.rule, state.key)  # the next member re-arms it
            return None
        event = parse_event(
            json.dumps(trigger["body"]).encode(),
            trigger.get("properties") or {},
            routing_key=trigger.get("routing_key") or "",
        )
        requests = tuple(
            SubmitRequest(
                r["extractor"],
                r["resource"],
                r["via"],
                MappingProxyType(r["parameters"]),
                r.get("entrypoint"),  # absent from triggers armed before Ray targets existed
                plain_runtime_env(r.get("runtime_env")),
            )
            for r in trigger.get("requests") or ()
        )
        collected = Collected(
            rule=state.rule,
            key=state.key,
            member="",
            data=None,
            spec=spec,
            total=state.expected,
            all_of=all_of,
            requests=requests,
        )
        return self.processor.collector.fire(
            uow, event, collected, state.generation, self.processor.message_builder
        )
