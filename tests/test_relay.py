"""The outbox relay on an SQLite store with recording sinks: sends, retries, gives up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.errors import (
    BrokerError,
    ClowderRejected,
    ClowderUnavailable,
    DeliveryFailed,
    StoreError,
)
from switchboard.metrics import Metrics
from switchboard.ports import Sink
from switchboard.relay import Relay
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import RecordingSink
from tests.conftest import FakeClock
from tests.store.helpers import submission


class OneByOneSink(Sink):
    """A sink without `send_many`, like the Clowder REST sink."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.errors = list(errors or [])
        self.sent: list[str] = []

    def send(self, row) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(row.submission.job_id)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    made = SqlStore(url, clock=clock)
    yield made
    made.close()


def queue_jobs(store: SqlStore, count: int, via: str = "amqp") -> list[str]:
    ids = [f"job-{via}-{i:04d}" for i in range(count)]
    with store.unit_of_work() as uow:
        for job in ids:
            uow.add_submission(submission(job, via=via), {"job_id": job}, {"message_id": job})
    return ids


def statuses(store: SqlStore) -> dict[str, int]:
    return {k: v for k, v in store.counts_by_status().items() if v}


def test_every_pending_row_is_sent_once_and_marked_sent(store, clock):
    jobs = queue_jobs(store, 7)
    sink = RecordingSink()
    stats = Relay(store, {"amqp": sink}, clock=clock).run_once()
    assert sorted(sink.job_ids) == jobs
    assert stats.sent == 7
    assert statuses(store) == {"sent": 7}
    assert Relay(store, {"amqp": sink}, clock=clock).run_once().total == 0


def test_rows_go_out_in_chunks_through_send_many(store, clock):
    queue_jobs(store, 12)
    chunks: list[int] = []

    class ChunkSink(RecordingSink):
        def send_many(self, rows):
            chunks.append(len(rows))
            return super().send_many(rows)

    Relay(store, {"amqp": ChunkSink()}, chunk_size=5, clock=clock).run_once()
    assert chunks == [5, 5, 2]


def test_keepalive_runs_between_chunks(store, clock):
    queue_jobs(store, 6)
    calls: list[int] = []
    relay = Relay(
        store,
        {"amqp": RecordingSink()},
        chunk_size=2,
        clock=clock,
        keepalive=lambda: calls.append(1),
    )
    relay.run_once()
    assert len(calls) == 3


def test_a_returned_message_is_retried_later_with_backoff_not_at_once(store, clock):
    (job,) = queue_jobs(store, 1)
    sink = RecordingSink(fail_times=1)
    relay = Relay(store, {"amqp": sink}, backoff_s=10, clock=clock)
    assert relay.run_once().retried == 1
    assert relay.run_once().total == 0  # not due yet: no busy loop
    clock.advance(11)
    assert relay.run_once().sent == 1
    assert sink.job_ids == [job]
    (row,) = store.recent_submissions(1)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_row_that_keeps_failing_is_marked_failed_after_max_attempts(store, clock):
    queue_jobs(store, 1)
    sink = RecordingSink(fail_times=100)
    relay = Relay(store, {"amqp": sink}, max_attempts=3, backoff_s=1, clock=clock)
    for _ in range(10):
        relay.run_once()
        clock.advance(3600)
    assert sink.attempts == 3
    (row,) = store.recent_submissions(1)
    assert row.status == "failed"
    assert "told to fail" in (row.last_error or "")


def test_only_the_failing_rows_of_a_chunk_are_retried(store, clock):
    queue_jobs(store, 4)
    sink = RecordingSink(fail_times=1)
    stats = Relay(store, {"amqp": sink}, clock=clock).run_once()
    assert (stats.sent, stats.retried) == (3, 1)
    assert statuses(store) == {"sent": 3, "pending": 1}


def test_clowder_refusing_a_submission_fails_it_at_once(store, clock):
    queue_jobs(store, 1, via="clowder-api")
    sink = OneByOneSink([ClowderRejected("HTTP 404 not found")])
    stats = Relay(store, {"clowder-api": sink}, clock=clock).run_once()
    assert stats.failed == 1
    (row,) = store.recent_submissions(1)
    assert row.status == "failed"
    assert row.last_error == "HTTP 404 not found"


def test_clowder_unavailable_is_retried_after_a_delay(store, clock):
    (job,) = queue_jobs(store, 1, via="clowder-api")
    sink = OneByOneSink([ClowderUnavailable("HTTP 503")])
    relay = Relay(store, {"clowder-api": sink}, backoff_s=5, clock=clock)
    assert relay.run_once().retried == 1
    assert relay.run_once().total == 0
    clock.advance(6)
    assert relay.run_once().sent == 1
    assert sink.sent == [job]


def test_a_row_for_a_target_without_a_sink_fails_with_a_clear_reason(store, clock):
    queue_jobs(store, 1, via="clowder-api")
    stats = Relay(store, {"amqp": RecordingSink()}, clock=clock).run_once()
    assert stats.failed == 1
    (row,) = store.recent_submissions(1)
    assert row.last_error == "no sink configured for via=clowder-api"


def test_an_unexpected_sink_error_is_a_failed_attempt_of_that_row_only(store, clock, caplog):
    first, second = queue_jobs(store, 2, via="clowder-api")
    sink = OneByOneSink([RuntimeError("bug")])
    relay = Relay(store, {"clowder-api": sink}, backoff_s=5, clock=clock)
    stats = relay.run_once()
    assert (stats.sent, stats.retried) == (1, 1)
    [failed] = [r for r in store.recent_submissions(2) if r.status == "pending"]
    assert (failed.submission.job_id, failed.attempts) == (first, 1)
    assert failed.last_error == "RuntimeError: bug"
    assert [getattr(r, "job_id", None) for r in caplog.records if r.levelname == "ERROR"] == [first]
    clock.advance(6)
    assert relay.run_once().sent == 1
    assert sink.sent == [second, first]


def test_an_unexpected_error_of_a_whole_batch_send_is_a_failed_attempt_of_each_row(store, clock):
    queue_jobs(store, 3)

    class BrokenBatchSink(RecordingSink):
        def send_many(self, rows):
            raise ValueError("sink bug")

    stats = Relay(store, {"amqp": BrokenBatchSink()}, clock=clock).run_once()
    assert stats.retried == 3
    assert statuses(store) == {"pending": 3}
    assert {r.last_error for r in store.recent_submissions(3)} == {"ValueError: sink bug"}


@pytest.mark.parametrize("error", [BrokerError("link lost"), StoreError("db gone")])
def test_a_lost_connection_still_propagates_and_leaves_the_row_untouched(store, clock, error):
    queue_jobs(store, 1, via="clowder-api")
    with pytest.raises(type(error)):
        Relay(store, {"clowder-api": OneByOneSink([error])}, clock=clock).run_once()
    [row] = store.recent_submissions(1)
    assert (row.status, row.attempts) == ("pending", 0)


def test_an_unwritable_manifest_dir_retries_the_firing_then_marks_it_failed(store, clock, tmp_path):
    from switchboard.collections.manifests import with_manifest_files

    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a manifest dir below a file can never be created, even by root
    path = str(blocker / "manifests" / "m1.json")
    with store.unit_of_work() as uow:
        uow.add_submission(
            submission("job-manifest", parameters={"manifest_id": "m1", "file_paths": path}),
            {"job_id": "job-manifest"},
            {"message_id": "job-manifest"},
        )
    sink = RecordingSink()
    relay = Relay(
        store,
        with_manifest_files({"amqp": sink}, store, str(blocker / "manifests")),
        max_attempts=2,
        clock=clock,
    )
    assert relay.run_once().retried == 1
    clock.advance(3600)
    assert relay.run_once().failed == 1
    [row] = store.recent_submissions(1)
    assert row.status == "failed"
    assert "writing manifest file" in (row.last_error or "") and path in row.last_error
    assert sink.rows == []


def test_drain_sends_more_than_one_claim_worth(store, clock):
    queue_jobs(store, 25)
    sink = RecordingSink()
    stats = Relay(store, {"amqp": sink}, clock=clock).drain(limit=10)
    assert stats.sent == 25
    assert len(set(sink.job_ids)) == 25


def test_outcomes_are_counted_per_target_in_metrics(store, clock):
    queue_jobs(store, 3)
    metrics = Metrics()
    sink = RecordingSink(fail_times=1, error=DeliveryFailed)
    Relay(store, {"amqp": sink}, clock=clock, metrics=metrics).run_once()
    target = submission().extractor
    assert metrics.value("switchboard_submissions_total", target=target, status="sent") == 2
    assert metrics.value("switchboard_submissions_total", target=target, status="retried") == 1


def test_a_store_that_can_mark_many_rows_sent_is_asked_once_per_chunk(store, clock):
    queue_jobs(store, 5)
    calls: list[list[str]] = []

    class BulkStore:
        def __getattr__(self, name):
            return getattr(store, name)

        def mark_sent_many(self, rows) -> set[str]:
            calls.append([row.submission.job_id for row in rows])
            return store.mark_sent_many(rows)

    Relay(BulkStore(), {"amqp": RecordingSink()}, chunk_size=3, clock=clock).run_once()
    assert [len(c) for c in calls] == [3, 2]
    assert statuses(store) == {"sent": 5}


def test_a_stopping_relay_hands_back_the_rows_it_has_not_tried(store, clock):
    first, *rest = queue_jobs(store, 3, via="clowder-api")
    sink = OneByOneSink()
    relay = Relay(store, {"clowder-api": sink}, clock=clock, should_stop=lambda: bool(sink.sent))
    relay.run_once()
    assert sink.sent == [first]
    due = store.claim_due(10, lease_s=30)  # due again at once, not at the end of the lease
    assert sorted(r.submission.job_id for r in due) == rest


def test_a_lost_connection_hands_back_untried_rows_and_keeps_the_one_in_flight_claimed(
    store, clock
):
    in_flight, *rest = queue_jobs(store, 3, via="clowder-api")
    sink = OneByOneSink([BrokerError("link lost")])
    with pytest.raises(BrokerError):
        Relay(store, {"clowder-api": sink}, clock=clock).run_once()
    due = sorted(r.submission.job_id for r in store.claim_due(10, lease_s=30))
    assert due == rest
    assert in_flight not in due  # it may have gone out: due again only when its claim ends
