"""The small interfaces the daemon is wired through; adapters and fakes implement them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from rule_utils.binding import ProgressStore

from .collections.state import CollectionState, Head, Manifest
from .model import DatasetView, Event, FileInfo, Submission

OutboxEntry = tuple[Submission, Mapping[str, Any], Mapping[str, Any]]  # (submission, body, props)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A submission waiting in (or done with) the outbox, plus the message body to send."""

    submission: Submission
    body: Mapping[str, Any]
    properties: Mapping[str, Any]
    status: str  # "pending" | "sent" | "failed"
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    claim_token: str | None = None  # set on rows a relay claimed: its proof of holding them


class CollectionProgress(ProgressStore, Protocol):
    """Collection state inside a unit of work: what rules read (`ProgressStore`) plus what
    firing and the sweeper write. Every write locks the collection's row first."""

    def lock(self, rule: str, key: str) -> Head:
        """Take (creating if new) the collection's row; its generation, state and count."""
        ...

    def insert_member(
        self,
        rule: str,
        key: str,
        generation: int,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        """Add a member to a locked generation; False if it was already there."""
        ...

    def bump(
        self,
        rule: str,
        key: str,
        added: int,
        *,
        quiet_for: timedelta | None = None,
        trigger: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> int:
        """Count `added` new members (re-arming a quiet deadline); the new count."""
        ...

    def reset(self, rule: str, key: str) -> int:
        """Open the next generation of a fired collection; its number."""
        ...

    def mark_fired(
        self,
        rule: str,
        key: str,
        generation: int,
        *,
        manifest_id: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        """Fire a generation exactly once; False if some transaction already did."""
        ...

    def has_all(self, rule: str, key: str, generation: int, expected: frozenset[str]) -> bool: ...
    def clear_deadline(self, rule: str, key: str) -> None: ...
    def quiet_due(self, now: datetime, limit: int = 100) -> list[CollectionState]: ...


@dataclass(frozen=True, slots=True)
class HeldSubmission:
    """A debounced rule's submission for one resource, held until `deadline`."""

    rule: str
    key: str
    deadline: datetime
    events: int  # matching events it has absorbed
    trigger: Mapping[str, Any]  # the latest event and its rendered targets (see debounce)


class Debounces(Protocol):
    """Held submissions of debounced rules inside a unit of work (see `debounce`)."""

    def hold(
        self, rule: str, key: str, now: datetime, deadline: datetime, trigger: Mapping[str, Any]
    ) -> None: ...
    def due(self, now: datetime, limit: int | None = 100) -> list[HeldSubmission]: ...
    def drop(self, rule: str, key: str) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction: everything an event changes commits together or not at all."""

    def already_processed(self, message_id: str) -> bool: ...
    def record_processed(self, message_id: str) -> bool:
        """Add the message id to the dedup ledger; False if it was already there."""
        ...

    def record_processed_many(self, message_ids: Iterable[str]) -> set[str]:
        """Add a batch's ids to the ledger at once; the ids that were new. Afterwards
        `record_processed` answers for them exactly as it would have without this call."""
        ...

    def prefetch(self, message_ids: Iterable[str] = (), dataset_ids: Iterable[str] = ()) -> None:
        """Read ahead what a batch will ask about (a cache only: answers do not change)."""
        ...

    def read_ahead(self, message_ids: Iterable[str], dataset_ids: Iterable[str]) -> None:
        """A batch's start: `record_processed_many(message_ids)` then
        `prefetch(dataset_ids=dataset_ids)`, in as few round trips as the store can."""
        ...

    def while_waiting(self, work: Callable[[], object]) -> None:
        """Run `work` while this transaction next waits for the database, if it does (maybe
        never): for work whose result only saves time later, never for work that must run."""
        ...

    def add_file(self, dataset_id: str, file: FileInfo) -> None: ...
    def dataset(self, dataset_id: str) -> DatasetView: ...
    def set_dataset_name(self, dataset_id: str, name: str) -> None: ...

    def add_submission(
        self, submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> bool:
        """Queue a submission in the outbox; False if its job_id is already there."""
        ...

    def add_submissions(self, entries: Iterable[OutboxEntry]) -> set[str]:
        """`add_submission` for each entry in order, in one statement; the job ids added."""
        ...

    @property
    def progress(self) -> CollectionProgress: ...
    @property
    def debounces(self) -> Debounces: ...
    def now(self) -> datetime:
        """The transaction's clock (the store's, so tests can move it)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside rolls back only what it did."""
        ...

    def record_manifest(
        self, rule: str, key: str, generation: int, *, file_path: str | None = None
    ) -> Manifest:
        """Freeze the generation's members into its manifest (recording twice is a no-op)."""
        ...


class Store(Protocol):
    """The state database (PostgreSQL in production, SQLite embedded)."""

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]: ...
    def due_outbox(self, limit: int, now: datetime | None = None) -> list[OutboxRow]: ...
    def claim_due(
        self,
        limit: int,
        lease_s: float,
        *,
        vias: Collection[str] | None = None,
        exclude_vias: Collection[str] = (),
    ) -> list[OutboxRow]:
        """Due pending rows, claimed for `lease_s` under a fresh `claim_token`."""
        ...

    def renew_claims(self, job_ids: Sequence[str], claim_token: str, lease_s: float) -> set[str]:
        """Extend the claim on the rows still held under `claim_token`; those job ids."""
        ...

    def release_claims(self, job_ids: Sequence[str], claim_token: str) -> None: ...
    def mark_sent(self, job_id: str, *, claim_token: str | None = None) -> bool: ...
    def mark_sent_many(
        self, rows: Sequence[OutboxRow], answers: Mapping[str, str] | None = None
    ) -> set[str]:
        """Mark rows sent (fenced by each row's claim token); the job ids marked. `answers`:
        the job id the target gave a row's job (Clowder's, for a REST submission)."""
        ...

    def mark_attempt_failed(
        self,
        job_id: str,
        error: str,
        retry_at: datetime | None,
        give_up: bool,
        *,
        claim_token: str | None = None,
    ) -> bool: ...
    def recent_submissions(self, limit: int) -> list[OutboxRow]: ...
    def counts_by_status(self) -> dict[str, int]: ...


class ManifestFiles(Protocol):
    """Where a firing's manifest file is written from (the store that holds its members)."""

    def write_manifest_file(self, manifest_id: str, path: str) -> None: ...


class JobMembers(Protocol):
    """Where a batch job's members come from: a fired collection's manifest, or the files the
    inventory knows of a dataset, each as `{"id", "name", "path"}`."""

    def manifest_members(self, manifest_id: str) -> Iterator[dict[str, str]]: ...
    def dataset_members(self, dataset_id: str) -> list[dict[str, str]]: ...


class Delivery(Protocol):
    """One message taken from the input queue, not yet acknowledged (read-only)."""

    @property
    def delivery_tag(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def redelivered(self) -> bool: ...


D = TypeVar("D", bound=Delivery)


class Source(Protocol[D]):
    """Where events come from (a RabbitMQ queue, or a list in tests), as deliveries of type D
    that only this source settles."""

    def batches(self, max_size: int, max_wait_s: float) -> Iterator[Sequence[D]]: ...
    def ack_through(self, delivery_tag: int) -> None: ...
    def dead_letter(self, delivery: D, reason: str) -> None: ...
    def delay(self, delivery: D, reason: str) -> None:
        """Park a delivery that waits on Clowder, to come back later (dead-letter it if the
        source has nowhere to park it)."""
        ...

    def keepalive(self) -> None:
        """Serve the connection's heartbeats between long steps (a no-op where none)."""
        ...

    def reconnect(self) -> None:
        """Open a fresh connection after a lost one (BrokerError if it cannot yet)."""
        ...

    def stop(self) -> None: ...


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


class FilePathLookup(Protocol):
    """Fetches the on-disk file paths legacy rules need; returns {dataset_id: reason} to delay."""

    def prepare(self, events: Iterable[Event]) -> Mapping[str, str]: ...


SendResult = tuple[OutboxRow, Exception | None]  # a row and how sending it failed (None: sent)


class Sink:
    """Where submissions go (an extractor queue, Clowder's REST API, Ray); sinks subclass it.

    `send` delivers one row or raises DeliveryFailed / ClowderUnavailable (retry) or
    SubmissionRejected. `batched` sinks send a chunk in one round trip with `send_many`; the
    default `send_many` sends one by one, reporting each row's failure.
    """

    batched: bool = False

    def send(self, row: OutboxRow) -> object:
        raise NotImplementedError

    def send_many(self, rows: Sequence[OutboxRow]) -> list[SendResult]:
        results: list[SendResult] = []
        for row in rows:
            try:
                self.send(row)
            except Exception as exc:  # reported per row; the caller decides what it means
                results.append((row, exc))
            else:
                results.append((row, None))
        return results

    def keepalive(self) -> None:
        """Keep an idle connection alive (called between relay rounds); nothing by default."""

    def close(self) -> None:
        """Release the sink's connection; nothing by default."""


class Metrics(Protocol):
    """The counters the core reports to (Prometheus in production, `NullMetrics` otherwise)."""

    def batch(self, events: int, duplicates: int, duration_s: float) -> None: ...
    def dead_lettered(self, reason: str, count: int) -> None: ...
    def delayed_events(self, count: int) -> None: ...
    def submission(self, extractor: str, status: str) -> None:
        """One outbox row's outcome: queued, sent, retried or failed."""
        ...

    def rule_outcomes(self, matched: Sequence[str], failed: Sequence[tuple[str, str]]) -> None:
        """One batch's matches (a rule name per matched event) and (rule, error) failures."""
        ...


class NullMetrics:
    """Metrics that go nowhere (no metrics port configured)."""

    def batch(self, events: int, duplicates: int, duration_s: float) -> None:
        pass

    def dead_lettered(self, reason: str, count: int) -> None:
        pass

    def delayed_events(self, count: int) -> None:
        pass

    def submission(self, extractor: str, status: str) -> None:
        pass

    def rule_outcomes(self, matched: Sequence[str], failed: Sequence[tuple[str, str]]) -> None:
        pass


Clock = Callable[[], datetime]
