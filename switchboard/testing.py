"""Fakes for testing rules and the daemon without a broker: a list source, a sink, a fake Clowder.

Rule authors can run their rules against recorded events with `ListSource` and
`RecordingSink`, and point anything that talks to Clowder at a `FakeClowder`, a real HTTP
server on 127.0.0.1 that answers like Clowder v1 (or, with `api_version=2`, like clowder2)::

    with FakeClowder(datasets={"ds1": "stereoTop - 2017-05-01"}) as clowder:
        client = ClowderClient(clowder.url, clowder.api_key)
        assert client.dataset_name("ds1") == "stereoTop - 2017-05-01"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rule_utils.binding import ProgressStore

from .errors import DeliveryFailed
from .fake_clowder import FakeClowder, RecordedRequest
from .jobs.job_states import JobState, StateSourceDown, UnknownJob
from .jobs.statuses import SOURCE_CLOWDER
from .jobs.views import JobView
from .ports import OutboxRow, Sink
from .records import message_from_record

__all__ = [
    "FakeClowder",
    "FakeJobStates",
    "ListDelivery",
    "ListSource",
    "RecordedRequest",
    "RecordingSink",
]


# --- source ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListDelivery:
    """One message of a ListSource (implements `ports.Delivery`)."""

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    routing_key: str = ""
    redelivered: bool = False

    @classmethod
    def from_record(cls, delivery_tag: int, record: Any) -> ListDelivery:
        """From raw bytes, a bare body object, or a fixture record `{properties, body}` (see
        `records.message_from_record`)."""
        message = message_from_record(record)
        return cls(delivery_tag, message.body, message.properties, message.routing_key)


class ListSource:
    """A `ports.Source` over a list of records, tracking what was acked, dead-lettered, delayed.

    Records may be fixture-style `{"properties", "body"}` objects, bare bodies or raw bytes.
    `batches()` yields them in order and ends when they run out, first calling `on_exhausted`
    (pass `daemon.stop` so a daemon finishes cleanly).
    """

    def __init__(
        self,
        records: Iterable[Any],
        *,
        on_exhausted: Callable[[], None] | None = None,
    ) -> None:
        self.deliveries = [ListDelivery.from_record(i, r) for i, r in enumerate(records, 1)]
        self.on_exhausted = on_exhausted
        self.acked: set[int] = set()
        self.dead_letters: list[tuple[ListDelivery, str]] = []
        self.delayed: list[tuple[ListDelivery, str]] = []
        self.stopped = False
        self._handed_out = 0

    def batches(self, max_size: int, max_wait_s: float) -> Iterator[list[ListDelivery]]:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        while not self.stopped and self._handed_out < len(self.deliveries):
            batch = self.deliveries[self._handed_out : self._handed_out + max_size]
            self._handed_out += len(batch)
            yield batch
        if self.on_exhausted is not None and not self.stopped:
            self.on_exhausted()

    def ack_through(self, delivery_tag: int) -> None:
        self.acked.update(d.delivery_tag for d in self.deliveries[:delivery_tag])

    def dead_letter(self, delivery: ListDelivery, reason: str) -> None:
        self.dead_letters.append((delivery, reason))
        self.acked.add(delivery.delivery_tag)

    def delay(self, delivery: ListDelivery, reason: str) -> None:
        self.delayed.append((delivery, reason))
        self.acked.add(delivery.delivery_tag)

    def keepalive(self) -> None:
        """Nothing to keep alive: a list has no connection."""

    def reconnect(self) -> None:
        """Nothing to reconnect."""

    def stop(self) -> None:
        self.stopped = True

    @property
    def unacked(self) -> list[ListDelivery]:
        """Deliveries handed out but not settled (what a broker would redeliver)."""
        return [d for d in self.deliveries[: self._handed_out] if d.delivery_tag not in self.acked]


# --- sink --------------------------------------------------------------------------------------


class RecordingSink(Sink):
    """A `ports.Sink` that keeps every row sent; told to, it fails the first `fail_times` sends.

    `attempts` counts every call, `rows` only the successful ones.
    """

    batched = True  # send_many publishes a chunk in one round trip

    def __init__(
        self,
        fail_times: int = 0,
        error: Callable[[str], Exception] = DeliveryFailed,
    ) -> None:
        self.fail_times = fail_times
        self.error = error
        self.rows: list[OutboxRow] = []
        self.attempts = 0

    def send(self, row: OutboxRow) -> None:
        self.attempts += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.error(f"told to fail sending {row.submission.job_id}")
        self.rows.append(row)

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]:
        results: list[tuple[OutboxRow, Exception | None]] = []
        for row in rows:
            try:
                self.send(row)
            except Exception as exc:  # reported per row, as the real sink does
                results.append((row, exc))
            else:
                results.append((row, None))
        return results

    @property
    def job_ids(self) -> list[str]:
        return [row.submission.job_id for row in self.rows]

    def bodies_for(self, extractor: str) -> list[Mapping[str, Any]]:
        return [row.body for row in self.rows if row.submission.extractor == extractor]


# --- job states (the job poller's port) -----------------------------------------------------


class FakeJobStates:
    """A `jobs.job_states.JobStateSource` answering from `states` (external id -> JobState);
    an id not there is unknown (HTTP 404). `down = "why"` makes every question raise
    StateSourceDown; `asked` lists every id asked about, in order."""

    def __init__(
        self,
        name: str = "ray",
        via: str = "ray",
        states: Mapping[str, JobState] | None = None,
    ) -> None:
        self.name = name
        self.via = via
        self.states: dict[str, JobState] = dict(states or {})
        self.down: str | None = None
        self.asked: list[str] = []
        self.closed = False

    def set(
        self, external_id: str, status: str, message: str | None = None, at: Any = None
    ) -> None:
        """Put the job in `status` (ours: started, succeeded, failed, ...) from now on."""
        self.states[external_id] = JobState(status, at or datetime.now(UTC), message)

    def external_id(self, job: JobView) -> str | None:
        return job.clowder_job_id if self.name == SOURCE_CLOWDER else job.ray_submission_id

    def state(self, external_id: str) -> JobState | UnknownJob:
        self.asked.append(external_id)
        if self.down is not None:
            raise StateSourceDown(self.down)
        found = self.states.get(external_id)
        if found is None:
            return UnknownJob(f"{self.name} knows no job {external_id} (HTTP 404)")
        return found

    def close(self) -> None:
        self.closed = True


# --- Clowder -----------------------------------------------------------------------------------


@dataclass
class _FakeCollection:
    generation: int = 1
    fired: set[int] = field(default_factory=set)
    members: dict[int, dict[str, tuple[Mapping[str, Any] | None, str | None]]] = field(
        default_factory=dict
    )

    def current(self) -> dict[str, tuple[Mapping[str, Any] | None, str | None]]:
        return self.members.setdefault(self.generation, {})


class InMemoryProgress(ProgressStore):
    """Collection progress in a dict, with `store.progress.Progress`'s answers, for rule tests.

    Bind it the way the daemon binds the real one, then call the rule::

        progress = InMemoryProgress()
        with rule_utils.bound(progress):
            my_rule(event, dataset)
        assert progress.count("fullfield/2017-05-01") == 1

    Generations start at 1; a member added twice counts once; `mark_fired` is True once per
    (rule, key, generation); `fired` lists what was marked.
    """

    def __init__(self) -> None:
        self._collections: dict[tuple[str, str], _FakeCollection] = {}
        self.fired: list[tuple[str, str, int]] = []

    def add_member(
        self,
        rule: str,
        key: str,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        current = self._collections.setdefault((rule, key), _FakeCollection()).current()
        if member in current:
            return False
        current[member] = (None if data is None else dict(data), extractor)
        return True

    def members(
        self, key: str, *, rule: str | None = None, generation: int | None = None
    ) -> dict[str, Mapping[str, Any] | None]:
        found: dict[str, Mapping[str, Any] | None] = {}
        for (r, k), collection in sorted(self._collections.items()):
            if k != key or (rule is not None and r != rule):
                continue
            chosen = collection.members.get(
                collection.generation if generation is None else generation, {}
            )
            for member, (data, _extractor) in chosen.items():
                if found.get(member) is None:
                    found[member] = data
        return dict(sorted(found.items()))

    def count(self, key: str, *, rule: str | None = None) -> int:
        return len(self.members(key, rule=rule))

    def counts_with_prefix(self, prefix: str, *, rule: str | None = None) -> dict[str, int]:
        keys = {k for (r, k) in self._collections if k.startswith(prefix)}
        counts = {k: self.count(k, rule=rule) for k in sorted(keys)}
        if rule is not None:
            counts = {k: n for k, n in counts.items() if (rule, k) in self._collections}
        return counts

    def generation(self, rule: str, key: str) -> int:
        collection = self._collections.get((rule, key))
        return 0 if collection is None else collection.generation

    def mark_fired(
        self,
        rule: str,
        key: str,
        generation: int,
        *,
        manifest_id: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        collection = self._collections.setdefault((rule, key), _FakeCollection())
        if generation in collection.fired:
            return False
        collection.fired.add(generation)
        self.fired.append((rule, key, generation))
        return True

    def reset(self, rule: str, key: str) -> int:
        collection = self._collections.get((rule, key))
        if collection is None:
            self._collections[(rule, key)] = _FakeCollection()
            return 1
        collection.generation += 1
        return collection.generation
