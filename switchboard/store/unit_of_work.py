"""One database transaction of the daemon: dedup ledger, inventory and outbox writes together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..model import DatasetView, FileInfo, Submission
from ..ports import Clock
from .models import PENDING
from .statements import datasets, files, messages, write_statements


@dataclass
class _KnownDataset:
    """What this transaction has read or written about one dataset (files in arrival order)."""

    name: str | None
    files: dict[str, FileInfo] = field(default_factory=dict)

    def view(self, dataset_id: str) -> DatasetView:
        return DatasetView(dataset_id, self.name, tuple(self.files.values()))


class SqlUnitOfWork:
    """The `UnitOfWork` port over one SQLAlchemy Session inside one transaction.

    Writes are single Core statements (one round trip each, no ORM flush). Dataset views are
    cached for the life of the transaction and kept up to date by `add_file` and
    `set_dataset_name`; code writing those tables through `session` directly bypasses it.
    """

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self._clock = clock
        self._sql = write_statements(session.get_bind().dialect.name)
        self._known: dict[str, _KnownDataset] = {}

    def now(self) -> datetime:
        return self._clock()

    def already_processed(self, message_id: str) -> bool:
        found = self.session.execute(
            select(messages.c.message_id).where(messages.c.message_id == message_id)
        ).first()
        return found is not None

    def record_processed(self, message_id: str) -> bool:
        """Add to the dedup ledger; True if new, False if this or a concurrent transaction has it.

        On PostgreSQL a concurrent uncommitted insert of the same id makes this wait for that
        transaction, then return False if it committed.
        """
        row = {"message_id": message_id, "processed_at": self.now()}
        return self.session.execute(self._sql.record_processed, row).first() is not None

    def add_file(self, dataset_id: str, file: FileInfo) -> None:
        """Add a file to the inventory; a file already there keeps its place and first values,
        except that empty name or mime type and unknown size are filled in."""
        row = {
            "dataset_id": dataset_id,
            "of_dataset": dataset_id,
            "file_id": file.id,
            "name": file.name,
            "mime_type": file.mime_type,
            "size": file.size,
            "first_seen_at": self.now(),
        }
        self.session.execute(self._sql.add_file, row)
        known = self._known.get(dataset_id)
        if known is not None:
            known.files[file.id] = _merged(known.files.get(file.id), file)

    def dataset(self, dataset_id: str) -> DatasetView:
        """The dataset's cached name and every file seen in it, in first-seen order."""
        known = self._known.get(dataset_id)
        if known is None:
            known = self._load(dataset_id)
            self._known[dataset_id] = known
        return known.view(dataset_id)

    def set_dataset_name(self, dataset_id: str, name: str) -> None:
        known = self._known.get(dataset_id)
        if known is not None and known.name == name:
            return
        row = {"id": dataset_id, "name": name, "name_fetched_at": self.now()}
        self.session.execute(self._sql.set_dataset_name, row)
        if known is not None:
            known.name = name

    def add_submission(
        self, submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> bool:
        """Queue in the outbox, due now; False when the job id is already there (or is being
        inserted by a concurrent transaction that then commits)."""
        now = self.now()
        row = {
            "job_id": submission.job_id,
            "rule": submission.rule,
            "extractor": submission.extractor,
            "via": submission.via,
            "resource_type": submission.resource_type,
            "resource_id": submission.resource_id,
            "parameters": submission.parameters,
            "event_message_id": submission.event_message_id,
            "body": body,
            "properties": properties,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        return self.session.execute(self._sql.add_submission, row).first() is not None

    def _load(self, dataset_id: str) -> _KnownDataset:
        name = self.session.execute(
            select(datasets.c.name).where(datasets.c.id == dataset_id)
        ).scalar_one_or_none()
        rows = self.session.execute(
            select(files.c.file_id, files.c.name, files.c.mime_type, files.c.size)
            .where(files.c.dataset_id == dataset_id)
            .order_by(files.c.position, files.c.first_seen_at, files.c.file_id)
        )
        known = _KnownDataset(name)
        for file_id, file_name, mime_type, size in rows:
            known.files[file_id] = FileInfo(file_id, file_name, mime_type, size)
        return known


def _merged(first: FileInfo | None, again: FileInfo) -> FileInfo:
    """The inventory's rule for a file seen twice, mirrored for the cache."""
    if first is None:
        return again
    return FileInfo(
        first.id,
        first.name or again.name,
        first.mime_type or again.mime_type,
        first.size if first.size is not None else again.size,
    )
