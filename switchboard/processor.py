"""The handler for events: turns a batch of parsed events into committed state, free of I/O.

Each batch is enriched (dataset names Clowder must be asked for, legacy rules' file paths),
matched and then committed in one transaction: dedup ledger, inventory, collection progress and
firings, and outbox rows. Nothing is acknowledged here (see `intake.Router`, which parses the
deliveries and hands their events here): the caller acks only what `BatchResult` says was
committed, dead-letters what kept failing, and delays what waits on Clowder.

One event's failure stays with that event: any exception while storing it (a bug, bad data,
a database error that is not an outage) is isolated by splitting the batch until it is alone,
then dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Protocol

import rule_utils

from .collections.firing import Collector
from .dataset_names import rules_need_dataset_names
from .debounce import hold_debounced
from .delays import DEFAULT_MAX_DELAYS, delay_count, gave_up_reason
from .errors import ClowderRejected, ClowderUnavailable, StoreError
from .events import parse_event
from .failures import describe_failure, first_line, shortened
from .intake import BatchResult, Parsed, Route, Router
from .model import DatasetView, Event
from .outbox_queue import MessageBuilder, OutboxQueue
from .ports import CrashGuard, DatasetNames, Delivery, FilePathLookup, Store, UnitOfWork
from .provenance.hook import ArchiveHook
from .rules.collect import Collected
from .rules.model import RuleSet

if TYPE_CHECKING:
    from .engine import CollectingEvaluation

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "Matcher", "Processor", "event_route"]


class Matcher(Protocol):
    """What the processor needs of the engine (so tests can pass a stand-in)."""

    @property
    def rules(self) -> RuleSet: ...

    def evaluate_many(
        self, pairs: Sequence[tuple[Event, DatasetView]], *, unmatched: bool = True
    ) -> Sequence[CollectingEvaluation]: ...

    def close(self) -> None:
        """Stop the engine's rule workers (threads, isolated rules' processes)."""
        ...


def event_route(processor: Processor, max_event_bytes: int) -> Route[Event]:
    """The intake route of Clowder events: `parse_event` under the size limit, then `processor`."""

    def parse(delivery: Delivery) -> Event:
        return parse_event(
            delivery.body,
            delivery.properties,
            routing_key=delivery.routing_key,
            max_bytes=max_event_bytes,
        )

    return Route(parse, processor)


class Processor:
    """Enrich, match and commit batches of events (`intake.Handler` of `Event`).

    `process(deliveries)` parses and routes them through a `Router` of this one handler (with
    `crash_guard`), for callers that only take events.
    """

    def __init__(
        self,
        engine: Matcher,
        store: Store,
        message_builder: MessageBuilder,
        *,
        max_event_bytes: int = 1_048_576,
        dataset_names: DatasetNames | None = None,
        manifest_dir: str = "",
        collector: Collector | None = None,
        file_paths: FilePathLookup | None = None,
        max_delays: int = DEFAULT_MAX_DELAYS,
        crash_guard: CrashGuard | None = None,
        archive: ArchiveHook | None = None,
    ) -> None:
        self.engine = engine
        self.archive = archive  # provenance: each batch's events archived in its transaction
        self.max_delays = max_delays
        self._names_needed: tuple[object, bool] | None = None  # (engine, its rules need names)
        self._paths_needed: tuple[object, bool] | None = None  # (engine, it has legacy rules)
        self.store = store
        self.message_builder = message_builder
        self.max_event_bytes = max_event_bytes
        self.dataset_names = dataset_names
        self.file_paths = file_paths
        self.collector = collector or Collector(manifest_dir)
        self.router = Router([event_route(self, max_event_bytes)], crash_guard)

    @property
    def rules(self) -> RuleSet:
        """The current rules (the engine's; reloading swaps the engine)."""
        return self.engine.rules

    def swap_engine(self, engine: Matcher) -> None:
        """Match with `engine` from the next batch on, and close the engine it replaces (its
        rule threads and worker processes would otherwise leak, one set per reload)."""
        old, self.engine = self.engine, engine
        old.close()

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult:
        """Parse and handle one batch; raises StoreError when the database is unreachable."""
        return self.router.process(deliveries)

    def handle(
        self, items: Sequence[Parsed[Event]], result: BatchResult, fingerprint: str | None = None
    ) -> None:
        """Enrich and commit parsed events into `result`; `fingerprint` names a suspect's
        attempt count, dropped in the transaction that commits it."""
        names, waiting = self._look_up_names(items)
        if self.file_paths is not None and self._needs_file_paths():  # before the transaction
            pending = (p.message for p in items if p.message.dataset_id not in waiting)
            waiting.update(self.file_paths.prepare(pending))
        ready = []
        for item in items:
            if item.message.dataset_id in waiting:
                self._delay(item.delivery, waiting[item.message.dataset_id], result)
            else:
                ready.append(item)
        self._commit_isolating(ready, names, result, fingerprint)

    def _delay(self, delivery: Delivery, reason: str, result: BatchResult) -> None:
        """Delay a delivery waiting on Clowder, or dead-letter it once it has waited
        `max_delays` times (the count rides in its headers, see `delays`)."""
        count = delay_count(delivery.properties)
        if count >= self.max_delays:
            dead = gave_up_reason(count, reason)
            log.warning("giving up on a delivery: %s", dead)
            result.poison.append((delivery, dead))
        else:
            result.delayed.append((delivery, reason))

    def _needs_names(self) -> bool:
        """Whether the current rules read `dataset.name` (recomputed when rules reload)."""
        if self._names_needed is None or self._names_needed[0] is not self.engine:
            self._names_needed = (self.engine, rules_need_dataset_names(self.engine.rules))
        return self._names_needed[1]

    def _needs_file_paths(self) -> bool:
        """Whether a legacy rule is loaded (only they read file paths): without one, Clowder is
        never asked for file lists."""
        if self._paths_needed is None or self._paths_needed[0] is not self.engine:
            legacy = any(r.kind == "legacy" for r in self.engine.rules)
            self._paths_needed = (self.engine, legacy)
        return self._paths_needed[1]

    def _look_up_names(
        self, parsed: Sequence[Parsed[Event]]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Names for datasets neither the events nor the cache know; ids Clowder failed on.

        Nothing is looked up (and nothing waits) unless a loaded rule may read the name. Each
        dataset is asked about once, with its first event (whose host and key may decide where).
        """
        names: dict[str, str] = {}
        waiting: dict[str, str] = {}
        if self.dataset_names is None or not self._needs_names():
            return names, waiting
        unknown: dict[str, Event] = {}
        for p in parsed:
            event = p.message
            if event.dataset_id and not event.dataset_name and event.file is not None:
                unknown.setdefault(event.dataset_id, event)
        if not unknown:
            return names, waiting
        with self.store.unit_of_work() as uow:
            known = {d for d in unknown if uow.dataset(d).name is not None}
        for dataset_id in sorted(unknown.keys() - known):
            try:
                names[dataset_id] = self.dataset_names.dataset_name(dataset_id, unknown[dataset_id])
            except ClowderUnavailable as exc:
                waiting[dataset_id] = f"Clowder unavailable looking up dataset {dataset_id}: {exc}"
            except ClowderRejected as exc:
                log.warning("dataset %s name lookup refused: %s", dataset_id, exc)
        return names, waiting

    def _commit_isolating(
        self,
        items: list[Parsed[Event]],
        names: dict[str, str],
        result: BatchResult,
        fingerprint: str | None = None,
    ) -> None:
        """Commit `items` in one transaction; on an unexpected failure split and retry halves.

        Only StoreError (the database is unreachable) fails the batch; any other exception,
        database errors that are not outages included, is some event's: halves are retried
        until the failing event is alone, and it is dead-lettered with a one-line reason.
        """
        if not items:
            return
        partial = BatchResult()
        archive = self.archive
        try:
            with self.store.unit_of_work() as uow:
                if archive is not None:  # its per-event work, while the batch's start runs
                    events = [i.message for i in items]
                    uow.while_waiting(lambda: archive.prepare(events))
                self._read_ahead(uow, items)
                self._apply(uow, items, names, partial)
                if fingerprint is not None and self.router.crash_guard is not None:
                    self.router.crash_guard.forget_in(uow, fingerprint)
        except StoreError:
            raise
        except Exception as exc:  # any bug or bad data isolates the event, not the daemon
            if len(items) == 1:
                reason = f"processing failed: {describe_failure(exc)}"
                if partial.rule_errors:  # e.g. a rule's failed statement aborted the transaction
                    rule, _, error = partial.rule_errors[0]
                    reason += f"; after rule {rule} failed: {first_line(error)}"
                reason = shortened(reason)
                log.error("poison event %s: %s", items[0].message.message_id, reason)
                result.poison.append((items[0].delivery, reason))
                return
            middle = len(items) // 2
            self._commit_isolating(items[:middle], names, result)
            self._commit_isolating(items[middle:], names, result)
            return
        result.committed.extend(i.delivery for i in items)
        result.duplicates += partial.duplicates
        result.submissions.extend(partial.submissions)
        result.rule_errors.extend(partial.rule_errors)

    @staticmethod
    def _read_ahead(uow: UnitOfWork, items: list[Parsed[Event]]) -> None:
        """Record the batch in the ledger and load its datasets in a few round trips instead of
        a few per event; `record_processed` still answers per event as it would have."""
        uow.read_ahead(
            [i.message.message_id for i in items],
            [i.message.dataset_id for i in items if i.message.dataset_id],
        )

    def _apply(
        self,
        uow: UnitOfWork,
        items: list[Parsed[Event]],
        names: dict[str, str],
        result: BatchResult,
    ) -> None:
        """Record and inventory each event in order (its view includes its own file and those
        of the events before it), match them all at once, apply their collects, then queue
        every submission (per event, then fired) in that order, in one statement.

        Matching reads only the event, its view and collection progress (which only rules and
        `_collect` write), so matching the batch before queueing any submission decides exactly
        what matching event by event would, with one hand-off for the batch's Python rules.
        """
        fresh: list[tuple[Event, DatasetView]] = []
        for item in items:
            view = self._record(uow, item.message, names)
            if view is None:
                result.duplicates += 1
            else:
                fresh.append((item.message, view))
        if not fresh:
            return
        with rule_utils.bound(uow.progress):
            evaluations = self.engine.evaluate_many(fresh, unmatched=False)
        queue = OutboxQueue(self.message_builder)
        collects: list[tuple[Event, Collected]] = []
        for (event, _), evaluation in zip(fresh, evaluations, strict=True):
            for decision in evaluation.decisions:
                if decision.matched:
                    result.matched_rules.append(decision.rule)
                if decision.error is not None:
                    result.rule_errors.append((decision.rule, event.message_id, decision.error))
            for submission in evaluation.submissions:
                queue.add(event, submission)
            hold_debounced(uow, event, evaluation.debounced)
            collects.extend((event, c) for c in evaluation.collects)
        self._collect(uow, collects, queue, result)
        result.submissions.extend(queue.flush(uow))
        if self.archive is not None:
            self.archive.record(uow, fresh, evaluations, collects, result)

    @staticmethod
    def _record(uow: UnitOfWork, event: Event, names: dict[str, str]) -> DatasetView | None:
        """Ledger and inventory writes for one event; its dataset view, or None if a duplicate."""
        if not uow.record_processed(event.message_id):
            return None
        dataset_id = event.dataset_id or ""
        if not dataset_id:
            return DatasetView(id="")
        name = event.dataset_name or names.get(dataset_id)
        if name:
            uow.set_dataset_name(dataset_id, name)
        if event.file is not None and event.file.id != dataset_id:
            uow.add_file(dataset_id, event.file)
        return uow.dataset(dataset_id)

    def _collect(
        self,
        uow: UnitOfWork,
        collects: list[tuple[Event, Collected]],
        queue: OutboxQueue,
        result: BatchResult,
    ) -> None:
        """Apply the batch's collect decisions, sorted by (rule, key) and otherwise in arrival
        order: every transaction locks collections in the same order, so concurrent daemons
        queue up on a busy collection instead of deadlocking."""
        collects.sort(key=lambda pair: (pair[1].rule, pair[1].key))
        for _, grouped in groupby(collects, key=lambda pair: (pair[1].rule, pair[1].key)):
            errors = self.collector.apply(uow, list(grouped), queue)
            result.rule_errors.extend(errors)
