"""Fires `quiet_for` collections whose quiet deadline has passed, also after downtime.

Deadlines live in the database, so a deadline that passed while no daemon ran fires on the
first sweep after a start. Due collections are locked with SKIP LOCKED, so several daemons
sweeping at once take disjoint ones, and `mark_fired` keeps the firing exactly once anyway.
Each collection is settled in its own savepoint: one that fails is logged and its deadline
cleared, and the others still fire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import StoreError
from ..outbox_queue import MessageBuilder, OutboxQueue
from ..periodic import PeriodicSweep
from ..ports import Store, UnitOfWork
from ..rules.collect import Collected
from ..rules.model import RuleSet
from .firing import Collector, Firing, holds
from .state import CollectionState
from .triggers import event_of, requests_of

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 1000


class SweptRules(Protocol):
    """Where the sweeper finds the current rules, store, collector and message builder (the
    processor: rules reload under it)."""

    @property
    def rules(self) -> RuleSet: ...

    store: Store
    collector: Collector
    message_builder: MessageBuilder


class Sweeper(PeriodicSweep):
    """A daemon periodic hook over one Processor (its store, current rules and collector)."""

    def __init__(
        self,
        processor: SweptRules,
        *,
        interval_s: float = 1.0,
        limit: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval_s=interval_s, limit=limit, monotonic=monotonic)
        self.processor = processor
        self.failures: list[tuple[str, str, str]] = []  # (rule, key, reason) of the last sweep

    def sweep(self) -> list[Firing]:
        """Fire every due collection whose other conditions hold; one transaction, one
        savepoint per collection.

        A collection that cannot be settled (a trigger that no longer parses, a broken target)
        is rolled back to its savepoint alone, logged and its deadline cleared, so it never
        holds up the others and is not retried every second; its next member re-arms it.
        """
        fired: list[Firing] = []
        self.failures = []
        with self.processor.store.unit_of_work() as uow:
            for state in uow.progress.quiet_due(uow.now(), self.limit):
                try:
                    with uow.savepoint():
                        firing = self._settle(uow, state)
                except StoreError:
                    raise  # an outage, not this collection's fault: the whole sweep waits
                except Exception as exc:
                    self._give_up(uow, state, exc)
                    continue
                if firing is not None:
                    fired.append(firing)
        return fired

    def _give_up(self, uow: UnitOfWork, state: CollectionState, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        log.error(
            "quiet_for collection %s %r generation %d could not fire: %s; deadline cleared "
            "until its next member",
            state.rule,
            state.key,
            state.generation,
            reason,
            extra={"rule": state.rule},
        )
        self.failures.append((state.rule, state.key, reason))
        uow.progress.clear_deadline(state.rule, state.key)

    def _settle(self, uow: UnitOfWork, state: CollectionState) -> Firing | None:
        rule = self.processor.rules.get(state.rule)
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
        event = event_of(trigger)
        requests = requests_of(trigger)
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
        queue = OutboxQueue(self.processor.message_builder)
        firing = self.processor.collector.fire(uow, event, collected, state.generation, queue)
        queue.flush(uow)
        return firing
