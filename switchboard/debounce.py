"""Debounced rules: hold a resource's submission until its matching events stop, then submit once.

A matching event of a rule with `debounce: 30s` does not submit: it holds (or pushes back) a
row per (rule, resource) in the event's own transaction, with a deadline 30 s on and the
event itself. When the deadline passes with no further matching event, `DebounceSweeper`
(a periodic hook of the daemon, like the collections' sweeper) submits once with the latest
event, deleting the row in the same transaction. The deadline lives in the database, so it
survives restarts and crashes; the job id is still the rule's deterministic one (its re-run
policy's generation included), so a sweep repeated after a crash queues nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .collections.triggers import event_of, event_record, request_records, requests_of
from .errors import StoreError
from .model import Decision, Event, Submission
from .outbox_queue import MessageBuilder, OutboxQueue
from .periodic import PeriodicSweep
from .ports import HeldSubmission, Store, UnitOfWork
from .rules.model import RuleSet
from .submissions import resource_id_of, submission_for

log = logging.getLogger(__name__)


def debounce_key(event: Event, decision: Decision) -> str:
    """The resource a debounced decision is held for: `dataset:<id>` / `file:<id>`."""
    return "|".join(
        sorted({f"{r.resource}:{resource_id_of(event, r.resource)}" for r in decision.requests})
    )


def hold_debounced(
    uow: UnitOfWork, event: Event, debounced: Iterable[tuple[Decision, timedelta]]
) -> int:
    """Hold the submissions of this event's matched debounced rules (each decision with its
    rule's debounce, as the engine's evaluation lists them); how many were held."""
    held = 0
    for decision, debounce in debounced:
        trigger = {
            **event_record(event),
            "requests": request_records(decision.requests),
            "generation": decision.generation,
        }
        now = uow.now()
        key = debounce_key(event, decision)
        uow.debounces.hold(decision.rule, key, now, now + debounce, trigger)
        held += 1
    return held


def held_submissions(held: HeldSubmission) -> tuple[Event, list[Submission]]:
    """The event and submissions a held row stands for, rebuilt from its trigger."""
    trigger = held.trigger
    event = event_of(trigger)
    generation = trigger.get("generation")
    submissions = [
        submission_for(held.rule, request, event, generation=generation)
        for request in requests_of(trigger)
    ]
    return event, submissions


class SweptRules(Protocol):
    """Where the sweeper finds the current rules, store and message builder (the processor)."""

    @property
    def rules(self) -> RuleSet: ...

    store: Store
    message_builder: MessageBuilder


class DebounceSweeper(PeriodicSweep):
    """A daemon periodic hook: submit every held submission whose deadline has passed."""

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

    def sweep(self, *, everything: bool = False) -> list[Submission]:
        """Submit the due held submissions in one transaction (one savepoint each); the
        submissions that went into the outbox. One that cannot be rebuilt is logged and
        dropped, never retried every second. `everything`: all held ones, due or not (a
        replay's recording has ended, and so has every burst in it)."""
        queued: list[Submission] = []
        with self.processor.store.unit_of_work() as uow:
            until = datetime.max.replace(tzinfo=UTC) if everything else uow.now()
            for held in uow.debounces.due(until, None if everything else self.limit):
                try:
                    with uow.savepoint():
                        queued += self._submit(uow, held)
                except StoreError:
                    raise
                except Exception as exc:
                    log.error(
                        "debounced submission of rule %s for %s could not be made: %s: %s; dropped",
                        held.rule,
                        held.key,
                        type(exc).__name__,
                        exc,
                        extra={"rule": held.rule},
                    )
                    uow.debounces.drop(held.rule, held.key)
        return queued

    def _submit(self, uow: UnitOfWork, held: HeldSubmission) -> list[Submission]:
        uow.debounces.drop(held.rule, held.key)
        rule = self.processor.rules.get(held.rule)
        if rule is None or rule.debounce is None:  # the rule changed or went away meanwhile
            log.info("dropping a held submission of rule %s: no longer debounced", held.rule)
            return []
        event, submissions = held_submissions(held)
        queue = OutboxQueue(self.processor.message_builder)
        for submission in submissions:
            queue.add(event, submission)
        added = queue.flush(uow)
        log.info(
            "debounce of rule %s for %s over: submitted after %d matching event(s)",
            held.rule,
            held.key,
            held.events,
            extra=_facts(held, added),
        )
        return added


def _facts(held: HeldSubmission, added: list[Submission]) -> dict[str, Any]:
    return {"rule": held.rule, "job_id": ",".join(s.job_id for s in added) or "-"}
