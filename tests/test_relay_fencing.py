"""Two relays on one PostgreSQL outbox: a relay stuck past its lease is fenced off its rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from switchboard.collections.manifests import with_manifest_files
from switchboard.errors import DeliveryFailed
from switchboard.ports import Sink
from switchboard.relay import Relay, RelayStats
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.conftest import FakeClock
from tests.store.helpers import submission

pytestmark = pytest.mark.postgres
LEASE_S = 30.0


@pytest.fixture
def replicas(pg_url: str, pg_schema: str, clock: FakeClock) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database, as two daemons would have."""
    upgrade(pg_url, pg_schema)
    first = SqlStore(pg_url, schema=pg_schema, clock=clock)
    second = SqlStore(pg_url, schema=pg_schema, clock=clock)
    yield first, second
    first.close()
    second.close()


class StuckSink(Sink):
    """Hangs on its first call until released (a Ray dashboard that never answers), then ends
    that call as told: `late_success` returns, otherwise it raises its own timeout."""

    def __init__(self, *, late_success: bool, batches: bool = False) -> None:
        self.late_success = late_success
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[str]] = []
        self.batched = batches

    def send(self, row) -> None:
        self._call([row])

    def send_many(self, rows):
        self._call(rows)
        return [(row, None) for row in rows]

    def _call(self, rows) -> None:
        self.calls.append([row.submission.job_id for row in rows])
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(60), "the test never released the stuck sink"
            if not self.late_success:
                raise DeliveryFailed("timed out after 15 s")


class HealthySink(Sink):
    def __init__(self, pause_s: float = 0.0) -> None:
        self.pause_s = pause_s  # a real target takes a moment, so two relays interleave
        self.sent: list[str] = []

    def send(self, row) -> None:
        time.sleep(self.pause_s)
        self.sent.append(row.submission.job_id)


def queue_jobs(store: SqlStore, count: int, via: str) -> list[str]:
    jobs = [f"job-{via}-{i}" for i in range(count)]
    with store.unit_of_work() as uow:
        for job in jobs:
            uow.add_submission(
                submission(job, via=via), {"job_id": job, "secretKey": "s3"}, {"message_id": job}
            )
    return jobs


def run_in_thread(relay: Relay) -> tuple[threading.Thread, list[RelayStats]]:
    results: list[RelayStats] = []
    thread = threading.Thread(target=lambda: results.append(relay.run_once()), daemon=True)
    thread.start()
    return thread, results


@pytest.mark.parametrize("late_success", [False, True], ids=["stuck-send-times-out", "succeeds"])
@pytest.mark.parametrize(
    ("batches", "wrapped"),
    [(False, False), (True, False), (False, True)],
    ids=["one-by-one", "chunks", "one-by-one-behind-manifest-files"],
)
def test_a_relay_stuck_past_its_lease_neither_sends_nor_marks_the_rows_another_relay_took_over(
    replicas, clock: FakeClock, late_success: bool, batches: bool, wrapped: bool
) -> None:
    store_a, store_b = replicas
    jobs = queue_jobs(store_a, 3, via="ray")
    stuck = StuckSink(late_success=late_success, batches=batches)
    sinks = {"ray": stuck}
    if wrapped:  # as app.py wires every sink; the wrapper has send_many whatever it wraps
        sinks = with_manifest_files(sinks, store_a, "")
    chunk_size = 1 if batches else 500
    relay_a = Relay(store_a, sinks, lease_s=LEASE_S, chunk_size=chunk_size, clock=clock)
    thread, results = run_in_thread(relay_a)
    assert stuck.entered.wait(30)

    clock.advance(LEASE_S + 1)  # relay A is still inside its first send when its lease ends
    healthy = HealthySink()
    stats_b = Relay(store_b, {"ray": healthy}, lease_s=LEASE_S, clock=clock).run_once()
    assert stats_b.sent == 3
    assert sorted(healthy.sent) == jobs

    stuck.release.set()
    thread.join(30)
    assert not thread.is_alive()
    [stats_a] = results
    assert stuck.calls == [[jobs[0]]]  # only the send that was in flight; nothing afterwards
    assert (stats_a.sent, stats_a.retried, stats_a.failed, stats_a.lost) == (0, 0, 0, 3)
    rows = store_b.recent_submissions(10)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("sent", 1, None)}


def test_two_live_relays_claiming_together_never_send_the_same_row(replicas, clock) -> None:
    store_a, store_b = replicas
    jobs = queue_jobs(store_a, 200, via="ray")
    sinks = [HealthySink(pause_s=0.002), HealthySink(pause_s=0.002)]
    relays = [
        Relay(store, {"ray": sink}, lease_s=LEASE_S, clock=clock)
        for store, sink in zip(replicas, sinks, strict=True)
    ]
    start = threading.Barrier(2)

    def drain(relay: Relay) -> None:
        start.wait()
        relay.drain(limit=20)

    threads = [threading.Thread(target=drain, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sent = sinks[0].sent + sinks[1].sent
    assert sorted(sent) == sorted(jobs)  # every row once, none twice
    assert sinks[0].sent and sinks[1].sent  # both really took part
    assert store_b.counts_by_status()["sent"] == 200
