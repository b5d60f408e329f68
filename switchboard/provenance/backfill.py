"""Backfill: archived events re-evaluated under given rules, submitted through the same outbox.

Each archived event is evaluated as it was (its body, the dataset's files as they were then),
by the given rules only. Submissions keep their deterministic job ids and go in through the
outbox's `ON CONFLICT DO NOTHING`, so nothing already queued is queued again; rules the archive
says already matched an event are not applied to it again, and job ids it recorded are skipped
(their outbox rows may be pruned). Collections gain members and fire exactly once, as in the
daemon. Each chunk is one short transaction, so a running daemon goes on meanwhile. A dry run
does all of it in a transaction that is rolled back.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Table, update

import rule_utils

from ..collections.firing import Collector
from ..engine import Engine
from ..errors import SwitchboardError
from ..model import DatasetView, Event, Submission
from ..outbox_queue import MessageBuilder, OutboxQueue
from ..rules.collect import Collected
from ..rules.model import RuleSet
from ..store.sql import SqlStore
from ..store.unit_of_work import SqlUnitOfWork
from .archive import EventArchive, archive_table, insert_memberships
from .queries import ArchivedRow, archived_events, view_then
from .records import restored_event, submission_fields
from .versions import RuleVersion

log = logging.getLogger(__name__)


@dataclass
class BackfillSummary:
    """What one backfill did (or, dry, would do)."""

    version: str
    events: int = 0
    submissions: list[Submission] = field(default_factory=list)
    repeats: int = 0  # proposed again but already queued or recorded: not submitted
    members: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def per_target(self) -> Counter[str]:
        return Counter(s.extractor for s in self.submissions)


class _CountingQueue(OutboxQueue):
    """An OutboxQueue that counts what was added (per event and fired), to tell repeats."""

    added = 0

    def add(self, event: Event, submission: Submission) -> None:
        self.added += 1
        super().add(event, submission)


class _DryRun(Exception):
    """Raised to roll a dry run's transaction back."""


def only_rules(ruleset: RuleSet, names: Sequence[str]) -> RuleSet:
    """The rules named in `names` (all if empty); SwitchboardError naming any not found."""
    if not names:
        return ruleset
    known = set(ruleset.names())
    missing = [n for n in names if n not in known]
    if missing:
        raise SwitchboardError(f"no rule named {', '.join(missing)} in the given rules")
    return RuleSet(tuple(r for r in ruleset if r.name in names))


def _already(row: ArchivedRow) -> tuple[set[str], set[str]]:
    """(rules, job ids) the archive says already acted on this event."""
    found = row.outcome or {}
    rules = {m["rule"] for m in found.get("matched", [])}
    rules |= {c["rule"] for c in found.get("collections", [])}
    rules |= {b["rule"] for b in found.get("backfills", [])}
    jobs = {s["job_id"] for s in found.get("submissions", [])}
    jobs |= set(found.get("repeated_job_ids", []))
    jobs |= {b["job_id"] for b in found.get("backfills", [])}
    return rules, jobs


def with_secret_key(build: MessageBuilder, key: str) -> MessageBuilder:
    """The archive keeps no secrets: backfilled messages carry CLOWDER_KEY as `secretKey`
    (scrubbed from the outbox row once sent), as pyclowder extractors need one."""

    def built(event: Event, s: Submission) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        body, properties = build(event, s)
        return {**body, "secretKey": key}, properties

    return built


class Backfill:
    """Runs one backfill of `ruleset` (already narrowed to the rules wanted) over `store`."""

    def __init__(
        self,
        store: SqlStore,
        ruleset: RuleSet,
        version: RuleVersion,
        build: MessageBuilder,
        *,
        rule_timeout_s: float = 2.0,
        manifest_dir: str = "",
        chunk: int = 200,
    ) -> None:
        self.store = store
        self.ruleset = ruleset
        self.version = version
        self.build = build
        self.rule_timeout_s = rule_timeout_s
        self.collector = Collector(manifest_dir)
        self.chunk = chunk

    def run(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        dataset_id: str | None = None,
        dry_run: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> BackfillSummary:
        summary = BackfillSummary(self.version.version)
        if not dry_run:
            EventArchive(self.store).activate(self.version, "backfill")
        engine = Engine(self.ruleset, rule_timeout_s=self.rule_timeout_s)

        def each_chunk(
            reader: Any, transaction: Callable[[], Any], after: Callable[[], object] | None = None
        ) -> None:
            rows = archived_events(
                reader, since=since, until=until, dataset_id=dataset_id, after_page=after
            )
            while batch := [r for _, r in zip(range(self.chunk), rows, strict=False)]:
                with transaction() as uow:
                    self._chunk(uow, engine, batch, summary)
                summary.events += len(batch)
                if on_progress is not None:
                    on_progress(len(batch))

        try:
            if dry_run:
                with self.store.unit_of_work() as uow:
                    each_chunk(uow.session.connection(), lambda: contextlib.nullcontext(uow))
                    raise _DryRun
            else:
                with self.store.engine.connect() as reader:
                    each_chunk(reader, self.store.unit_of_work, reader.rollback)
        except _DryRun:
            pass
        finally:
            engine.close()
        return summary

    def _chunk(
        self, uow: SqlUnitOfWork, engine: Engine, rows: list[ArchivedRow], summary: BackfillSummary
    ) -> None:
        connection = uow.session.connection()
        pairs: list[tuple[Event, DatasetView]] = []
        done: list[tuple[set[str], set[str]]] = []
        for row in rows:
            try:
                pairs.append((restored_event(row._mapping), view_then(connection, row)))
            except Exception as exc:  # an archived body the parser now refuses: say so, go on
                summary.errors.append(f"{row.message_id}: cannot restore: {exc}")
                continue
            done.append(_already(row))
        with rule_utils.bound(uow.progress):
            evaluations = engine.evaluate_many(pairs)
        queue = _CountingQueue(self.build)
        collects: list[tuple[Event, Collected]] = []
        recorded = 0
        for (event, _), evaluation, (rules, jobs) in zip(pairs, evaluations, done, strict=True):
            kept = [d for d in evaluation.decisions if d.rule not in rules]
            for d in kept:
                if d.error:
                    summary.errors.append(f"{d.rule} on {event.message_id}: {d.error}")
            for s in engine.submissions_of(event, kept):
                if s.job_id in jobs:
                    recorded += 1
                else:
                    queue.add(event, s)
            collects += [(event, c) for c in evaluation.collects if c.rule not in rules]
        collects.sort(key=lambda pair: (pair[1].rule, pair[1].key))
        for _, grouped in groupby(collects, key=lambda pair: (pair[1].rule, pair[1].key)):
            for rule, message_id, error in self.collector.apply(uow, list(grouped), queue):
                summary.errors.append(f"{rule} on {message_id}: {error}")
        added = queue.added
        queued = queue.flush(uow)
        summary.repeats += recorded + added - len(queued)
        summary.submissions += queued
        summary.members += len(collects)
        self._note(connection, rows, queued, collects, uow.now())

    def _note(
        self,
        connection: Any,
        rows: list[ArchivedRow],
        queued: list[Submission],
        collects: list[tuple[Event, Collected]],
        now: datetime,
    ) -> None:
        """Record in each event's archived outcome what the backfill did for it."""
        by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in queued:
            by_event[s.event_message_id].append(
                {**submission_fields(s), "at": now.isoformat(), "version": self.version.version}
            )
        for event, c in collects:
            by_event[event.message_id].append(
                {
                    "rule": c.rule,
                    "key": c.key,
                    "member": c.member,
                    "job_id": None,
                    "at": now.isoformat(),
                    "version": self.version.version,
                }
            )
        table: Table = archive_table
        for row in rows:
            extra = by_event.get(row.message_id)
            if not extra:
                continue
            found = dict(row.outcome or {})
            found["backfills"] = [*found.get("backfills", []), *extra]
            connection.execute(update(table).where(table.c.id == row.id).values(outcome=found))
        insert_memberships(connection, collects, now)
