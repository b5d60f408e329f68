"""The event archive: every consumed event and its outcome, written in the batch's transaction.

`EventArchive.record` is the processor's `ArchiveHook` (one batched insert per batch, plus one
for collection memberships when the batch added any); `record_dead_letters` keeps the events
intake refused or gave up on, in a short transaction of their own (their batch's transaction
did not commit them). `activate` stores the rule version the following decisions are made under.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import SQLAlchemyError

from ..errors import MalformedEvent, StoreError
from ..events import parse_event
from ..model import DatasetView, Event
from ..ports import Delivery, UnitOfWork
from ..rules.collect import Collected
from ..store.provenance_tables import ArchivedEventRow, EventMembershipRow
from ..store.statements import upsert
from ..store.unit_of_work import SqlUnitOfWork
from .records import (
    DEAD_LETTERED,
    archived_row,
    body_text,
    dead_body_text,
    event_fields,
    outcome,
)
from .version_store import write_activation
from .versions import RuleVersion

if TYPE_CHECKING:
    from ..engine import CollectingEvaluation
    from ..intake import BatchResult
    from ..store.sql import SqlStore

log = logging.getLogger(__name__)

archive_table = cast(Table, ArchivedEventRow.__table__)
memberships = cast(Table, EventMembershipRow.__table__)
MESSAGE_ID_KEYS = ("msgid", "jobid", "job_id")


class EventArchive:
    """Archives events for one store; knows the rule version decisions are being made under."""

    def __init__(self, store: SqlStore, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.clock = clock or store.clock
        self.version: str | None = None
        self._unwritten: list[tuple[RuleVersion, str, datetime]] = []
        self._texts: dict[int, tuple[Event, str]] = {}  # by id(event): `prepare`'s body texts

    def prepare(self, events: Sequence[Event]) -> None:
        """Cut the secrets out of the batch's bodies now (the processor calls this while the
        database works on the batch's first statements), so `record` has their texts ready."""
        self._texts = {id(e): (e, body_text(e.body, e.raw)) for e in events}

    def _text(self, event: Event) -> str:
        """The event's body text: the one `prepare` made for this very event, else made now."""
        kept = self._texts.get(id(event))
        if kept is not None and kept[0] is event:
            return kept[1]
        return body_text(event.body, event.raw)

    def activate(self, version: RuleVersion, reason: str) -> str:
        """Make `version` the one following decisions name, and store it with this activation.

        Should the database be down, the activation is written with the next batch instead."""
        self.version = version.version
        at = self.clock()
        try:
            with self.store.engine.begin() as connection:
                write_activation(connection, version, reason, at)
        except (SQLAlchemyError, StoreError) as exc:
            log.warning(
                "rule version %s not stored yet (%s); storing it with the next batch",
                version.version,
                type(exc).__name__,
            )
            self._unwritten.append((version, reason, at))
        log.info("rules version %s active (%s)", version.version, reason)
        return version.version

    def _write_unwritten(self, connection: Connection) -> None:
        pending, self._unwritten = self._unwritten, []
        for version, reason, at in pending:
            write_activation(connection, version, reason, at)

    def record(
        self,
        uow: UnitOfWork,
        fresh: Sequence[tuple[Event, DatasetView]],
        evaluations: Sequence[CollectingEvaluation],
        collects: Sequence[tuple[Event, Collected]],
        result: BatchResult,
    ) -> None:
        """Add one archive row per fresh event, in the transaction of `uow` (see module doc)."""
        assert isinstance(uow, SqlUnitOfWork)
        now = uow.now()
        queued: dict[str, list[Any]] = defaultdict(list)
        for s in result.submissions:
            queued[s.event_message_id].append(s)
        errors: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for rule, message_id, error in result.rule_errors:
            errors[message_id].append((rule, error))
        collected: dict[str, list[Collected]] = defaultdict(list)
        for event, c in collects:
            collected[event.message_id].append(c)
        rows = []
        for (event, view), evaluation in zip(fresh, evaluations, strict=True):
            mine = queued.get(event.message_id, [])
            sent = {s.job_id for s in mine}
            repeated = (s.job_id for s in evaluation.submissions if s.job_id not in sent)
            found = outcome(
                self.version,
                evaluation.decisions,
                mine,
                repeated,
                collected.get(event.message_id, ()),
                errors.get(event.message_id, ()),
            )
            rows.append(archived_row(event, view, now, self.version, found, self._text(event)))
        self._texts = {}
        connection = uow.session.connection()
        if self._unwritten:
            self._write_unwritten(connection)
        insert_rows(connection, rows)
        insert_memberships(connection, collects, now)

    def record_dead_letters(self, refused: Sequence[tuple[Delivery, str]]) -> None:
        """Archive deliveries that are being dead-lettered, with the reason (own transaction).

        Any failure here is logged, never raised: the dead letter keeps the message anyway."""
        if not refused:
            return
        try:
            now = self.clock()
            rows = [self._dead_row(delivery, reason, now) for delivery, reason in refused]
            with self.store.engine.begin() as connection:
                if self._unwritten:
                    self._write_unwritten(connection)
                connection.execute(insert(archive_table), rows)
        except Exception as exc:  # archiving must never hold up a dead letter: log and go on
            log.warning("%d dead letters not archived: %s", len(refused), type(exc).__name__)

    def _dead_row(self, delivery: Delivery, reason: str, now: datetime) -> dict[str, Any]:
        found = outcome(self.version, (), (), (), (), ())
        found["dead_letter"] = reason
        row: dict[str, Any] = {
            "message_id": _message_id(delivery.body),
            "arrived_at": now,
            "rule_version": self.version,
            "status": DEAD_LETTERED,
            "kind": None,
            "dataset_id": None,
            "file_id": None,
            "files_seen": None,
            "routing_key": delivery.routing_key,
            "event": {"properties": json.loads(json.dumps(dict(delivery.properties), default=str))},
            "body": dead_body_text(delivery.body),
            "outcome": found,
        }
        try:
            event = parse_event(
                delivery.body, delivery.properties, routing_key=delivery.routing_key
            )
        except MalformedEvent:
            return row
        except Exception:  # a body that broke the parser: archived as it is
            return row
        row.update(
            message_id=event.message_id,
            kind=event.kind.value,
            dataset_id=event.dataset_id,
            file_id=event.file.id if event.file is not None else None,
            event=event_fields(event, event.dataset_name),
        )
        return row


def _message_id(body: bytes) -> str:
    """The message id a refused body names, else `sha256:` of it (as the parser would)."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        parsed = None
    if isinstance(parsed, dict):
        for key in MESSAGE_ID_KEYS:
            value = parsed.get(key)
            if isinstance(value, str) and value and len(value) <= 512:
                return value
    return "sha256:" + hashlib.sha256(body).hexdigest()


COLUMNS = (
    "message_id",
    "arrived_at",
    "rule_version",
    "status",
    "kind",
    "dataset_id",
    "file_id",
    "files_seen",
    "routing_key",
    "event",
    "body",
    "outcome",
)
JSON_COLUMNS = frozenset({"event", "outcome"})
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)  # built once, not per value


def insert_memberships(
    connection: Connection, collects: Sequence[tuple[Event, Collected]], now: datetime
) -> None:
    """One membership row per event a collection took in (one already there is kept), so
    `explain --event` can say which collections an event joined; nothing when none did."""
    if not collects:
        return
    members = [
        {
            "rule": c.rule,
            "key": c.key,
            "member": c.member,
            "message_id": e.message_id,
            "arrived_at": now,
        }
        for e, c in collects
    ]
    statement = upsert(connection.dialect.name, memberships).on_conflict_do_nothing()
    connection.execute(statement, members)


def insert_rows(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert archive rows in one go: on PostgreSQL with COPY (one round trip, no per-row
    statement), elsewhere as one executemany."""
    if connection.dialect.name != "postgresql":
        connection.execute(insert(archive_table), rows)
        return
    raw = connection.connection.driver_connection
    statement = f"COPY event_archive ({', '.join(COLUMNS)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(
                [_ENCODER.encode(row[c]) if c in JSON_COLUMNS else row[c] for c in COLUMNS]
            )


class ArchivingIntake:
    """An intake (the message router) whose dead letters are archived with their reasons."""

    def __init__(self, intake: Any, archive: EventArchive) -> None:
        self.intake = intake
        self.archive = archive

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult:
        result: BatchResult = self.intake.process(deliveries)
        self.archive.record_dead_letters([*result.malformed, *result.poison])
        return result


def archiving(intake: Any, archive: EventArchive | None) -> Any:
    """`intake` with its dead letters archived (as it is without an archive)."""
    return intake if archive is None else ArchivingIntake(intake, archive)
