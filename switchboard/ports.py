"""The small interfaces the daemon is wired through; adapters and fakes implement them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .model import DatasetView, FileInfo, Submission


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

    def add_file(self, dataset_id: str, file: FileInfo) -> None: ...
    def dataset(self, dataset_id: str) -> DatasetView: ...
    def set_dataset_name(self, dataset_id: str, name: str) -> None: ...

    def add_submission(
        self, submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> bool:
        """Queue a submission in the outbox; False if its job_id is already there."""
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
    def mark_sent_many(self, rows: Sequence[OutboxRow]) -> set[str]:
        """Mark rows sent (fenced by each row's claim token); the job ids marked."""
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


class Delivery(Protocol):
    """One message taken from the input queue, not yet acknowledged."""

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any]
    routing_key: str
    redelivered: bool


class Source(Protocol):
    """Where events come from (a RabbitMQ queue, or a list in tests)."""

    def batches(self, max_size: int, max_wait_s: float) -> Iterator[Sequence[Delivery]]: ...
    def ack_through(self, delivery_tag: int) -> None: ...
    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...
    def stop(self) -> None: ...


class Sink(Protocol):
    """Where submissions go (an extractor queue, Clowder's REST API, Ray)."""

    def send(self, row: OutboxRow) -> None:
        """Deliver, or raise DeliveryFailed / ClowderUnavailable (retry) or SubmissionRejected."""
        ...


Clock = Callable[[], datetime]
