"""Turns one batch of deliveries into committed state: the heart of the daemon's loop, free of I/O.

Each batch is parsed, enriched (dataset names Clowder must be asked for), matched and then
committed in one transaction: dedup ledger, inventory, collection progress and firings, and
outbox rows. Nothing is acknowledged
here; the caller acks only what `BatchResult` says was committed, dead-letters what could not
be parsed or kept failing, and delays what waits on Clowder.

One event's failure stays with that event: any exception while parsing it is a dead letter,
any exception while storing it (a bug, bad data, a database error that is not an outage) is
isolated by splitting the batch until it is alone, then dead-lettered. A delivery that comes
back redelivered may have crashed the process (`os._exit`, a segfault, the OOM killer); with a
`CrashGuard` each such delivery is counted before it is processed, alone, and dead-lettered
once it has crashed the daemon `max_crashes` times.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Protocol

import rule_utils

from .collections.firing import Collector
from .collections.spec import Collected
from .dataset_names import rules_need_dataset_names
from .delays import DEFAULT_MAX_DELAYS, delay_count, gave_up_reason
from .errors import ClowderRejected, ClowderUnavailable, MalformedEvent, StoreError
from .events import parse_event
from .model import DatasetView, Event, Submission
from .ports import Delivery, Store, UnitOfWork

log = logging.getLogger(__name__)

MessageBuilder = Callable[[Event, Submission], tuple[Mapping[str, Any], Mapping[str, Any]]]


class Matcher(Protocol):
    """What the processor needs of the engine (so tests can pass a stand-in)."""

    def evaluate(self, event: Event, dataset: Any) -> Any: ...
    def submissions(self, evaluation: Any) -> list[Submission]: ...


class FilePathLookup(Protocol):
    """Fetches the on-disk file paths legacy rules need; returns {dataset_id: reason} to delay."""

    def prepare(self, events: Iterable[Event]) -> Mapping[str, str]: ...


class CrashGuard(Protocol):
    """Counts attempts at redelivered deliveries, outside the event's transaction."""

    max_crashes: int

    def record_attempt(self, fingerprint: str) -> int:
        """Count one more attempt, committed before processing starts; the count so far."""
        ...

    def forget(self, fingerprint: str) -> None:
        """Drop the count of a delivery that was settled without committing (own transaction)."""
        ...

    def forget_in(self, uow: UnitOfWork, fingerprint: str) -> None:
        """Drop the count in the transaction that commits the delivery's event."""
        ...


class DatasetNames(Protocol):
    """Looks up a dataset's name the event does not carry (Clowder's REST API).

    `event` is one event of that dataset: where to ask may depend on it (its `host` and
    `secretKey`, see `dataset_names.DatasetNameLookup`).
    """

    def dataset_name(self, dataset_id: str, event: Event | None = None) -> str: ...


@dataclass
class BatchResult:
    """What happened to each delivery of one batch."""

    committed: list[Delivery] = field(default_factory=list)
    duplicates: int = 0
    submissions: list[Submission] = field(default_factory=list)
    rule_errors: list[tuple[str, str, str]] = field(default_factory=list)
    malformed: list[tuple[Delivery, str]] = field(default_factory=list)
    delayed: list[tuple[Delivery, str]] = field(default_factory=list)
    poison: list[tuple[Delivery, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    delivery: Delivery
    event: Event


class Processor:
    """Parse, enrich, match and commit batches of deliveries."""

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
    ) -> None:
        self.engine = engine
        self.max_delays = max_delays
        self._names_needed: tuple[object, bool] | None = None  # (engine, its rules need names)
        self.store = store
        self.message_builder = message_builder
        self.max_event_bytes = max_event_bytes
        self.dataset_names = dataset_names
        self.file_paths = file_paths
        self.collector = collector or Collector(manifest_dir)
        self.crash_guard = crash_guard

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult:
        """Handle one batch; raises StoreError when the database is unreachable (retry later).

        Redelivered deliveries (with a crash guard) go first, each alone; the rest together.
        """
        result = BatchResult()
        guarded = self.crash_guard is not None
        for delivery in deliveries:
            if guarded and delivery.redelivered:
                self._process_suspect(delivery, result)
        self._process_group([d for d in deliveries if not (guarded and d.redelivered)], result)
        return result

    def _process_suspect(self, delivery: Delivery, result: BatchResult) -> None:
        """Count the attempt (committed first, so a crash cannot undo it), then either
        dead-letter a delivery that has crashed the daemon often enough or process it alone.

        The delivery that first came in was interrupted too (it is redelivered), so the count
        of crashes is the count of attempts recorded here, this one included.
        """
        guard = self.crash_guard
        assert guard is not None
        fingerprint = delivery_fingerprint(delivery)
        crashes = guard.record_attempt(fingerprint)
        if crashes >= guard.max_crashes:
            reason = f"crashed the daemon {crashes} times"
            log.error("dead-lettering a redelivered message that %s", reason)
            guard.forget(fingerprint)
            result.poison.append((delivery, reason))
            return
        committed = len(result.committed)
        self._process_group([delivery], result, fingerprint)
        if len(result.committed) == committed:  # settled another way: it did not crash us
            guard.forget(fingerprint)

    def _process_group(
        self, deliveries: Sequence[Delivery], result: BatchResult, fingerprint: str | None = None
    ) -> None:
        """Parse, enrich and commit `deliveries` into `result`; `fingerprint` names a suspect's
        attempt count, dropped in the transaction that commits it."""
        parsed = self._parse(deliveries, result)
        names, waiting = self._look_up_names(parsed)
        if self.file_paths is not None:  # legacy rules' file paths, fetched before the transaction
            pending = (p.event for p in parsed if p.event.dataset_id not in waiting)
            waiting.update(self.file_paths.prepare(pending))
        ready = []
        for item in parsed:
            if item.event.dataset_id in waiting:
                self._delay(item.delivery, waiting[item.event.dataset_id], result)
            else:
                ready.append(item)
        self._commit_isolating(ready, names, result, fingerprint)

    def _parse(self, deliveries: Sequence[Delivery], result: BatchResult) -> list[_Parsed]:
        """The deliveries that parse; any exception parsing one makes it a malformed one."""
        parsed: list[_Parsed] = []
        for delivery in deliveries:
            try:
                event = parse_event(
                    delivery.body,
                    delivery.properties,
                    routing_key=delivery.routing_key,
                    max_bytes=self.max_event_bytes,
                )
            except MalformedEvent as exc:
                result.malformed.append((delivery, exc.reason))
            except Exception as exc:  # a bug in parsing must not stop the daemon: this event only
                reason = f"parsing failed: {describe_failure(exc)}"
                log.error("unparseable message (tag %s): %s", delivery.delivery_tag, reason)
                result.malformed.append((delivery, reason))
            else:
                parsed.append(_Parsed(delivery, event))
        return parsed

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
            rules = getattr(self.engine, "rules", None)
            needed = True if rules is None else rules_need_dataset_names(rules)
            self._names_needed = (self.engine, needed)
        return self._names_needed[1]

    def _look_up_names(self, parsed: list[_Parsed]) -> tuple[dict[str, str], dict[str, str]]:
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
            if p.event.dataset_id and not p.event.dataset_name and p.event.file is not None:
                unknown.setdefault(p.event.dataset_id, p.event)
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
        items: list[_Parsed],
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
        collects: list[tuple[Event, Collected]] = []
        try:
            with self.store.unit_of_work() as uow:
                self._read_ahead(uow, items)
                self._apply(uow, items, names, partial, collects)
                self._collect(uow, collects, partial)
                if fingerprint is not None and self.crash_guard is not None:
                    self.crash_guard.forget_in(uow, fingerprint)
        except StoreError:
            raise
        except Exception as exc:  # any bug or bad data isolates the event, not the daemon
            if len(items) == 1:
                reason = f"processing failed: {describe_failure(exc)}"
                if partial.rule_errors:  # e.g. a rule's failed statement aborted the transaction
                    rule, _, error = partial.rule_errors[0]
                    reason += f"; after rule {rule} failed: {_first_line(error)}"
                reason = _shortened(reason)
                log.error("poison event %s: %s", items[0].event.message_id, reason)
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
    def _read_ahead(uow: UnitOfWork, items: list[_Parsed]) -> None:
        """Record the batch in the ledger and load its datasets in a few round trips instead of
        a few per event; `record_processed` still answers per event as it would have."""
        uow.record_processed_many([i.event.message_id for i in items])
        uow.prefetch(dataset_ids=[i.event.dataset_id for i in items if i.event.dataset_id])

    def _apply(
        self,
        uow: UnitOfWork,
        items: list[_Parsed],
        names: dict[str, str],
        result: BatchResult,
        collects: list[tuple[Event, Collected]],
    ) -> None:
        """Record and inventory each event in order (its view includes its own file and those
        of the events before it), match them all at once, then queue their submissions in order.

        Matching reads only the event, its view and collection progress (which only rules and
        `_collect` write), so matching the batch before queueing any submission decides exactly
        what matching event by event would, with one hand-off for the batch's Python rules.
        The submissions go into the outbox in that order too, in one statement.
        """
        fresh: list[tuple[Event, DatasetView]] = []
        for item in items:
            view = self._record(uow, item.event, names)
            if view is None:
                result.duplicates += 1
            else:
                fresh.append((item.event, view))
        if not fresh:
            return
        progress = getattr(uow, "progress", None)
        with rule_utils.bound(progress) if progress is not None else nullcontext():
            evaluations = self._evaluate(fresh)
        entries: list[tuple[Submission, Mapping[str, Any], Mapping[str, Any]]] = []
        for (event, _), evaluation in zip(fresh, evaluations, strict=True):
            for decision in evaluation.decisions:
                if decision.error is not None:
                    result.rule_errors.append((decision.rule, event.message_id, decision.error))
            for submission in self.engine.submissions(evaluation):
                entries.append((submission, *self.message_builder(event, submission)))
            collects.extend((event, c) for c in getattr(evaluation, "collects", ()))
        result.submissions.extend(self._queue(uow, entries))

    @staticmethod
    def _queue(
        uow: UnitOfWork, entries: list[tuple[Submission, Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[Submission]:
        """Add the submissions to the outbox in order (in one statement when the unit of work
        can); those that went in, each once."""
        add_many = getattr(uow, "add_submissions", None)
        if add_many is None:
            return [s for s, body, props in entries if uow.add_submission(s, body, props)]
        added = set(add_many(entries))
        queued = []
        for submission, _, _ in entries:
            if submission.job_id in added:
                added.discard(submission.job_id)
                queued.append(submission)
        return queued

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

    def _evaluate(self, pairs: list[tuple[Event, DatasetView]]) -> list[Any]:
        """The engine's evaluations of `pairs`, in one call when it can take a batch."""
        evaluate_many = getattr(self.engine, "evaluate_many", None)
        if evaluate_many is not None:
            return list(evaluate_many(pairs))
        return [self.engine.evaluate(event, view) for event, view in pairs]

    def _collect(
        self, uow: UnitOfWork, collects: list[tuple[Event, Collected]], result: BatchResult
    ) -> None:
        """Apply the batch's collect decisions, sorted by (rule, key) and otherwise in arrival
        order: every transaction locks collections in the same order, so concurrent daemons
        queue up on a busy collection instead of deadlocking."""
        collects.sort(key=lambda pair: (pair[1].rule, pair[1].key))
        for _, grouped in groupby(collects, key=lambda pair: (pair[1].rule, pair[1].key)):
            firings, errors = self.collector.apply(uow, list(grouped), self.message_builder)
            result.rule_errors.extend(errors)
            for firing in firings:
                result.submissions.extend(firing.submissions)


def delivery_fingerprint(delivery: Delivery) -> str:
    """What identifies one delivery across redeliveries without parsing it (parsing is part of
    what may crash): a hash of its routing key and body, of fixed length."""
    digest = hashlib.sha256(delivery.routing_key.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(bytes(delivery.body))
    return "sha256:" + digest.hexdigest()


MAX_REASON_CHARS = 500


def describe_failure(error: BaseException) -> str:
    """`Type: first line` of an exception, fit for a dead-letter header and a log line.

    A database error is described by the driver's own error (with its SQLSTATE), not by
    SQLAlchemy's text, which appends the SQL statement; only the first line is kept (the
    server's DETAIL lines may quote values).
    """
    original = getattr(error, "orig", None)
    source = original if isinstance(original, BaseException) else error
    sqlstate = getattr(source, "sqlstate", None)
    code = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) and sqlstate else ""
    return _shortened(f"{type(source).__name__}{code}: {_first_line(str(source))}")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _shortened(text: str) -> str:
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text
