"""One database transaction of the daemon: dedup ledger, inventory and outbox writes together."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Result, select
from sqlalchemy.orm import Session

from ..collections.state import Manifest
from ..model import DatasetView, FileInfo, Submission
from ..ports import Clock
from .array_insert import followers_statement
from .batch_start import LEDGER, start_batch
from .dataset_locks import lock_datasets
from .dataset_rows import load_views, name_writes
from .debounces import SqlDebounces
from .errors import store_errors
from .file_rows import file_writes
from .job_records import create_jobs, job_row, tracked
from .job_tables import jobs
from .manifests import record_manifest
from .models import PENDING
from .pipelined import Statement, first_column_after
from .progress import Progress
from .statements import (
    DATASET_VIEW,
    among,
    datasets,
    files,
    messages,
    submissions,
    write_statements,
)


@dataclass
class _KnownDataset:
    """What this transaction has read or written about one dataset (files in arrival order)."""

    name: str | None
    files: dict[str, FileInfo] = field(default_factory=dict)

    def view(self, dataset_id: str) -> DatasetView:
        return DatasetView(dataset_id, self.name, tuple(self.files.values()))


class SqlUnitOfWork:
    """The `UnitOfWork` port over one SQLAlchemy Session inside one transaction.

    Round trips are what a batch costs, so: ledger and outbox inserts are single Core
    statements (their answer is needed at once) unless `record_processed_many` recorded the
    batch's ids in one or `add_submissions` queued a batch's submissions in one; inventory
    writes (`add_file`, `set_dataset_name`) are buffered and written by `flush()` in one
    statement per table, which `SqlStore` calls before committing (on PostgreSQL a batch's
    outbox insert takes them along in its round trip, see `pipelined`). Dataset views are cached
    for the life of the transaction, loaded in one query (after `prefetch`, one for many
    datasets on PostgreSQL, one per table elsewhere) and kept up to date with the buffered
    writes, so reads after writes see them; on PostgreSQL each dataset is locked for the
    transaction before its first read (`dataset_locks`). Code that queries through `session`
    gets the buffer flushed first; `progress` does not need that (the collection tables are
    never buffered), so it skips the flush and the buffer keeps batching.
    """

    def __init__(self, session: Session, clock: Clock, where: str = "database") -> None:
        self._session = session
        self._where = where
        self._clock = clock
        self._dialect = session.get_bind().dialect.name
        self._sql = write_statements(self._dialect)
        self._known: dict[str, _KnownDataset] = {}
        self._in_ledger: set[str] = set()  # message ids this transaction knows are recorded
        self._fresh: set[str] = set()  # recorded by record_processed_many, not yet asked about
        self._in_outbox: set[str] = set()  # job ids this transaction knows are queued
        self._file_rows: dict[tuple[str, str], dict[str, Any]] = {}  # in arrival order
        self._name_rows: dict[str, dict[str, Any]] = {}
        self._connection: Connection | None = None
        self._while_waiting: list[Callable[[], object]] = []

    def while_waiting(self, work: Callable[[], object]) -> None:
        """Run `work` during this transaction's next pipelined round trip on PostgreSQL (the
        batch's start, its outbox insert), between sending and reading: the server runs the
        statements while the client works. Dropped when no such round trip comes."""
        self._while_waiting.append(work)

    def _waiting(self) -> None:
        """The statements are sent: run the work handed to `while_waiting`."""
        work, self._while_waiting = self._while_waiting, []
        for step in work:
            step()

    @property
    def session(self) -> Session:
        """The transaction's session, with buffered inventory writes flushed into it."""
        self.flush()
        return self._session

    def now(self) -> datetime:
        return self._clock()

    def _execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        """Run a Core statement on the transaction's connection (skipping the ORM's layer)."""
        return self._conn().execute(statement, parameters)

    def _conn(self) -> Connection:
        """The transaction's connection (Core statements skip the ORM's layer)."""
        if self._connection is None:
            self._connection = self._session.connection()
        return self._connection

    @property
    def progress(self) -> Progress:
        """Collection progress in this unit of work's transaction."""
        return Progress(self._session, self._clock)

    @property
    def debounces(self) -> SqlDebounces:
        """Debounced rules' held submissions in this unit of work's transaction."""
        return SqlDebounces(self.session)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside rolls back what it did, then propagates
        (as StoreError when it means the database is unreachable)."""
        with store_errors(self._where), self.session.begin_nested():
            yield

    def record_manifest(
        self, rule: str, key: str, generation: int, *, file_path: str | None = None
    ) -> Manifest:
        """Freeze the generation's members into its manifest, in this transaction."""
        return record_manifest(
            self.session, rule, key, generation, now=self.now(), file_path=file_path
        )

    def flush(self) -> None:
        """Write the buffered inventory rows: names first, then files in arrival order.

        On PostgreSQL each table's rows go in as one statement over arrays (`file_rows`,
        `dataset_rows`); elsewhere as an executemany of single-row statements, in order, so
        each file's position subquery sees the rows written before it.
        """
        if self._dialect == "postgresql":
            for statement in self._inventory_writes():
                self._conn().exec_driver_sql(*statement)
            return
        if self._name_rows:
            rows = list(self._name_rows.values())
            self._name_rows.clear()
            self._execute(self._sql.set_dataset_name, rows)
        if self._file_rows:
            rows = list(self._file_rows.values())
            self._file_rows.clear()
            self._execute(self._sql.add_file, rows)

    def _inventory_writes(self) -> list[Statement]:
        """PostgreSQL's statements for the buffered names, then files; the buffers emptied."""
        writes: list[Statement] = []
        if self._name_rows:
            writes.append(name_writes(list(self._name_rows.values())))
            self._name_rows.clear()
        if self._file_rows:
            writes.append(file_writes(list(self._file_rows.values())))
            self._file_rows.clear()
        return writes

    def prefetch(self, message_ids: Iterable[str] = (), dataset_ids: Iterable[str] = ()) -> None:
        """Read ahead what a batch will ask about, in one query per table instead of one per
        event: which of `message_ids` are already in the ledger, and the datasets' views.

        Purely a read cache: `record_processed` still inserts every id not found here, with
        its usual answer for a concurrent transaction inserting the same id.
        """
        wanted = [m for m in dict.fromkeys(message_ids) if m not in self._in_ledger]
        if wanted:
            found = self._execute(
                select(messages.c.message_id).where(
                    among(messages.c.message_id, wanted, self._dialect)
                )
            ).scalars()
            self._in_ledger.update(found)
        unknown = [d for d in dict.fromkeys(dataset_ids) if d and d not in self._known]
        if unknown:
            self._lock(unknown)
            self._known.update(self._load_many(unknown))

    def already_processed(self, message_id: str) -> bool:
        if message_id in self._in_ledger:
            return True
        found = self._execute(
            select(messages.c.message_id).where(messages.c.message_id == message_id)
        ).first()
        return found is not None

    def record_processed(self, message_id: str) -> bool:
        """Add to the dedup ledger; True if new, False if this or a concurrent transaction has it.

        On PostgreSQL a concurrent uncommitted insert of the same id makes this wait for that
        transaction, then return False if it committed.
        """
        if message_id in self._fresh:
            self._fresh.discard(message_id)
            return True
        if message_id in self._in_ledger:
            return False
        row = {"message_id": message_id, "processed_at": self.now()}
        added = self._execute(self._sql.record_processed, row).first() is not None
        self._in_ledger.add(message_id)
        return added

    def record_processed_many(self, message_ids: Iterable[str]) -> set[str]:
        """Add a batch's ids to the ledger in one statement; the ids that were new.

        Afterwards `record_processed` answers for these ids without a round trip and exactly
        as it would have: True the first time it is asked about a new id, False otherwise.
        Every id given is in the ledger when the transaction commits, asked about or not.
        Rows go in sorted, so two transactions recording overlapping batches never deadlock.
        """
        wanted = sorted({m for m in message_ids if m not in self._in_ledger})
        if not wanted:
            return set()
        now = self.now()
        if self._dialect == "postgresql":  # one array parameter: one text for any batch size
            values = {"ids": wanted, "at": now}
            new = set(self._conn().exec_driver_sql(LEDGER, values).scalars())
        else:
            rows = [{"message_id": m, "processed_at": now} for m in wanted]
            new = set(self._execute(self._sql.record_processed, rows).scalars())
        self._recorded(wanted, new)
        return new

    def _recorded(self, wanted: list[str], new: set[str]) -> None:
        """Remember that `wanted` are in the ledger, `new` of them added by this transaction."""
        self._in_ledger.update(wanted)
        self._fresh.update(new)

    def read_ahead(self, message_ids: Iterable[str], dataset_ids: Iterable[str]) -> None:
        """`record_processed_many(message_ids)`, then `prefetch(dataset_ids=dataset_ids)`: on
        PostgreSQL both in one round trip with the transaction's BEGIN (`batch_start`)."""
        if self._dialect != "postgresql":
            self.record_processed_many(message_ids)
            self.prefetch(dataset_ids=dataset_ids)
            return
        wanted = sorted({m for m in message_ids if m not in self._in_ledger})
        unknown = [d for d in dict.fromkeys(dataset_ids) if d and d not in self._known]
        if not wanted and not unknown:
            return
        new, views = start_batch(
            self._conn(), wanted, self.now(), sorted(unknown), meanwhile=self._waiting
        )
        self._recorded(wanted, new)
        self._known.update(self._with_buffered_writes(_known_from(unknown, views)))

    def add_file(self, dataset_id: str, file: FileInfo) -> None:
        """Add a file to the inventory; a file already there keeps its place and first values,
        except that empty name or mime type and unknown size are filled in. Buffered."""
        key = (dataset_id, file.id)
        buffered = self._file_rows.get(key)
        if buffered is None:
            self._file_rows[key] = {
                "dataset_id": dataset_id,
                "of_dataset": dataset_id,
                "file_id": file.id,
                "name": file.name,
                "mime_type": file.mime_type,
                "size": file.size,
                "first_seen_at": self.now(),
            }
        else:  # the same rule as the upsert's, so one merged row does what two would
            buffered["name"] = buffered["name"] or file.name
            buffered["mime_type"] = buffered["mime_type"] or file.mime_type
            if buffered["size"] is None:
                buffered["size"] = file.size
        known = self._known.get(dataset_id)
        if known is not None:
            known.files[file.id] = _merged(known.files.get(file.id), file)

    def dataset(self, dataset_id: str) -> DatasetView:
        """The dataset's cached name and every file seen in it, in first-seen order."""
        known = self._known.get(dataset_id)
        if known is None:
            self._lock([dataset_id])
            known = self._load_one(dataset_id)
            self._known[dataset_id] = known
        return known.view(dataset_id)

    def _lock(self, dataset_ids: list[str]) -> None:
        """Hold these datasets until this transaction ends, before their first read (see
        `dataset_locks`: a concurrent daemon's files of them are committed, then read)."""
        if self._dialect == "postgresql":
            lock_datasets(self._conn(), dataset_ids)

    def set_dataset_name(self, dataset_id: str, name: str) -> None:
        """Cache the dataset's name (looked up in Clowder). Buffered."""
        known = self._known.get(dataset_id)
        if known is not None and known.name == name:
            return
        self._name_rows[dataset_id] = {
            "id": dataset_id,
            "name": name,
            "name_fetched_at": self.now(),
        }
        if known is not None:
            known.name = name

    def add_submission(
        self, submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> bool:
        """Queue in the outbox, due now; False when the job id is already there (or is being
        inserted by a concurrent transaction that then commits)."""
        if submission.job_id in self._in_outbox:
            return False
        row = self._submission_row(submission, body, properties)
        added = self._execute(self._sql.add_submission, row).first() is not None
        self._in_outbox.add(submission.job_id)
        if added:
            self._create_jobs([(submission, body, properties)])
        return added

    def add_submissions(
        self, entries: Iterable[tuple[Submission, Mapping[str, Any], Mapping[str, Any]]]
    ) -> set[str]:
        """`add_submission` for each (submission, body, properties) in order, in one statement
        instead of a round trip each; the job ids that went in.

        The rows, their order and which of them go in are what the calls one by one would
        have given: a job id already known to this transaction, or repeated in `entries`, is
        skipped, and one already in the table (or being inserted concurrently) is not added.
        """
        rows = []
        queued = []
        for submission, body, properties in entries:
            if submission.job_id in self._in_outbox:
                continue
            rows.append(self._submission_row(submission, body, properties))
            queued.append((submission, body, properties))
            self._in_outbox.add(submission.job_id)
        if not rows:
            return set()
        if self._dialect == "postgresql":  # the jobs of the rows that went in, in one statement
            now = self.now()
            # and the buffered inventory writes in front of them: one round trip for all three
            made = tracked([job_row(sub, body, props, now) for sub, body, props in queued])
            statement = followers_statement(submissions, rows, "job_id", jobs, made)
            writes = self._inventory_writes()
            meanwhile = self._waiting if self._while_waiting else None
            return set(first_column_after(self._conn(), writes, statement, meanwhile))
        added = set(self._execute(self._sql.add_submission, rows).scalars())
        self._create_jobs([entry for entry in queued if entry[0].job_id in added])
        return added

    def _create_jobs(
        self, entries: Sequence[tuple[Submission, Mapping[str, Any], Mapping[str, Any]]]
    ) -> None:
        """The pending job of each submission just queued, in the same transaction."""
        if entries:
            now = self.now()
            rows = [job_row(sub, body, props, now) for sub, body, props in entries]
            create_jobs(self._conn(), rows)

    def _submission_row(
        self, submission: Submission, body: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The outbox row of a submission, due now."""
        now = self.now()
        return {
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
            "options": submission.options,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }

    def _load_many(self, dataset_ids: list[str]) -> dict[str, _KnownDataset]:
        """The stored views of `dataset_ids` with this transaction's buffered writes laid over."""
        if self._dialect == "postgresql":
            views = load_views(self._conn(), dataset_ids)
            return self._with_buffered_writes(_known_from(dataset_ids, views))
        named = self._execute(
            select(datasets.c.id, datasets.c.name).where(
                among(datasets.c.id, dataset_ids, self._dialect)
            )
        )
        names: dict[str, str | None] = {row.id: row.name for row in named}
        loaded = {d: _KnownDataset(names.get(d)) for d in dataset_ids}
        rows = self._execute(
            select(
                files.c.dataset_id, files.c.file_id, files.c.name, files.c.mime_type, files.c.size
            )
            .where(among(files.c.dataset_id, dataset_ids, self._dialect))
            .order_by(files.c.dataset_id, files.c.position, files.c.first_seen_at, files.c.file_id)
        )
        for row in rows:
            loaded[row.dataset_id].files[row.file_id] = FileInfo(
                row.file_id, row.name, row.mime_type, row.size
            )
        return self._with_buffered_writes(loaded)

    def _load_one(self, dataset_id: str) -> _KnownDataset:
        """One dataset's stored view (one round trip) with the buffered writes laid over."""
        rows = self._execute(DATASET_VIEW, {"dataset_id": dataset_id}).all()
        known = _KnownDataset(rows[0].dataset_name if rows else None)
        for row in rows:
            _name, file_id, file_name, mime_type, size = tuple(row)
            if file_id is not None:
                known.files[file_id] = FileInfo(file_id, file_name, mime_type, size)
        return self._with_buffered_writes({dataset_id: known})[dataset_id]

    def _with_buffered_writes(self, loaded: dict[str, _KnownDataset]) -> dict[str, _KnownDataset]:
        """Lay this transaction's unflushed names and files over views read from the database."""
        for dataset_id, known in loaded.items():
            buffered_name = self._name_rows.get(dataset_id)
            if buffered_name is not None:
                known.name = buffered_name["name"]
        for (dataset_id, file_id), row in self._file_rows.items():
            into = loaded.get(dataset_id)
            if into is not None:
                again = FileInfo(file_id, row["name"], row["mime_type"], row["size"])
                into.files[file_id] = _merged(into.files.get(file_id), again)
        return loaded


def _known_from(
    dataset_ids: Iterable[str], views: Mapping[str, tuple[str | None, list[FileInfo]]]
) -> dict[str, _KnownDataset]:
    """The cache entries of `dataset_ids` from their stored views (none stored: empty)."""
    known = {}
    for dataset_id in dataset_ids:
        name, found = views.get(dataset_id, (None, []))
        known[dataset_id] = _KnownDataset(name, {f.id: f for f in found})
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
