"""The relay on a thread per target, on the real RabbitMQ: a hung target holds up nothing else."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.app import relay_threads
from switchboard.clowder import ClowderClient
from switchboard.daemon import Backoff, Daemon
from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.ports import Sink
from switchboard.processor import Processor
from switchboard.relay import Relay, RelayStats
from switchboard.relay_threads import RelayThreads, RelayWorker
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.sinks.clowder_api import ClowderApiSink
from switchboard.sinks.extractor_queue import ExtractorQueueSink
from switchboard.store.sql import SqlStore
from switchboard.store.throttle_sql import SqlAdmissions
from switchboard.testing import ListSource, RecordingSink
from switchboard.throttle import TargetLimit, Throttle
from tests.broker import URI, side_channel
from tests.integration.clowder_events import RULES_YAML, record
from tests.silent_server import SilentServer
from tests.store.helpers import submission

WAIT_S = 30.0  # a bound on waiting for something that should happen, never a measured figure


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"test.threads.{uuid.uuid4().hex}"
    yield name
    with side_channel() as cleanup:
        cleanup.queue_delete(name)


def wait_for_message(queue: str) -> bytes | None:
    """The first message of `queue`, waiting up to WAIT_S for it to arrive."""
    give_up_at = time.monotonic() + WAIT_S
    with side_channel() as channel:
        channel.queue_declare(queue, durable=True)
        while time.monotonic() < give_up_at:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return body
            time.sleep(0.05)
    return None


def wait_until(condition) -> bool:
    """Whether `condition()` became true within WAIT_S."""
    give_up_at = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > give_up_at:
            return False
        time.sleep(0.02)
    return True


def rows_of(store: SqlStore) -> dict:
    return {r.submission.job_id: r for r in store.recent_submissions(100)}


def queue_row(store: SqlStore, job: str, via: str, extractor: str) -> None:
    with store.unit_of_work() as uow:
        uow.add_submission(
            submission(job, via=via, extractor=extractor),
            {"job_id": job, "secretKey": "s3"},
            {"message_id": job},
        )


@pytest.mark.rabbitmq
def test_a_hung_clowder_endpoint_does_not_delay_an_amqp_submission_queued_after_it(
    store: SqlStore, silent_server: SilentServer, queue: str
) -> None:
    queue_row(store, "job-clowder", "clowder-api", "ncsa.wordcount")
    queue_row(store, "job-amqp", "amqp", queue)
    hung = ClowderApiSink(ClowderClient(silent_server.url, "key", timeout_s=600, retries=0))
    amqp = ExtractorQueueSink(URI, client_name=f"test-threads-{uuid.uuid4().hex}", timeout_s=15)
    threads = relay_threads(Settings(), store, {"clowder-api": hung, "amqp": amqp}, None)
    try:
        threads.wake()
        assert silent_server.accepted.wait(WAIT_S), "the Clowder submission was never tried"
        body = wait_for_message(queue)
        assert body is not None, "the AMQP row never reached its queue while Clowder hung"
        assert wait_until(lambda: rows_of(store)["job-amqp"].status == "sent")
        # the Clowder row's only attempt is still hanging: the AMQP row did not wait for it
        clowder = rows_of(store)["job-clowder"]
        assert (clowder.status, clowder.attempts) == ("pending", 0)
    finally:
        threads.close(timeout_s=0)
        silent_server.close()  # the hung request fails now, so its thread can finish
        threads.close(timeout_s=WAIT_S)
        amqp.close()


def test_the_threaded_relay_never_touches_the_input_connection(sql_store: SqlStore) -> None:
    settings = Settings(relay_lease_s=30)
    threads = relay_threads(settings, sql_store, {"amqp": Sink(), "ray": Sink()}, None)
    assert [w.name for w in threads.workers] == ["amqp", "ray", "unrouted"]
    assert all(w.relay.keepalive is None for w in threads.workers)
    assert threads.workers[2].relay.exclude_vias == {"amqp", "ray"}


class BlockingSink(Sink):
    """Blocks every send until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, row) -> None:
        self.entered.set()
        assert self.release.wait(WAIT_S * 2)
        self.sent.append(row.submission.job_id)


def test_intake_goes_on_while_a_sink_hangs_and_the_rows_go_out_once_it_answers(
    tmp_path: Path, store: SqlStore
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor="test.ext", via="amqp"))
    engine = Engine(load_rules([str(rules)]))
    sink = BlockingSink()
    threads = RelayThreads(
        [RelayWorker("amqp", Relay(store, {"amqp": sink}, vias=["amqp"]))], poll_s=0.05
    )
    source = ListSource([record(n) for n in range(12)])
    daemon = Daemon(
        source,
        Processor(engine, store, extractor_message),
        threads,
        batch_size=4,
        backoff=Backoff(initial_s=0.001),
    )
    source.on_exhausted = daemon.stop
    try:
        assert daemon.run() == 0  # returns although the sink has not answered once
        assert source.unacked == []
        assert store.counts_by_status()["pending"] == 12
        assert sink.entered.wait(WAIT_S)
        assert sink.sent == []
        sink.release.set()
        assert wait_until(lambda: store.counts_by_status()["sent"] == 12)
        assert len(set(sink.sent)) == 12
    finally:
        sink.release.set()
        threads.close()
        engine.close()


@pytest.mark.rabbitmq
def test_a_chunk_of_41_with_one_extractor_name_over_255_bytes_sends_40_and_fails_that_one(
    store: SqlStore, queue: str
) -> None:
    for n in range(41):
        extractor = "terra." + "x" * 300 if n == 20 else queue
        queue_row(store, f"job-{n:02d}", "amqp", extractor)
    sink = ExtractorQueueSink(URI, client_name=f"test-long-name-{uuid.uuid4().hex}")
    try:
        stats = Relay(store, {"amqp": sink}, clock=store.clock).run_once()
    finally:
        sink.close()
    assert (stats.sent, stats.failed, stats.retried) == (40, 1, 0)
    rows = {r.submission.job_id: r for r in store.recent_submissions(50)}
    bad = rows.pop("job-20")
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert "306 bytes" in (bad.last_error or "") and "255" in (bad.last_error or "")
    assert {r.status for r in rows.values()} == {"sent"}
    with side_channel() as channel:
        assert channel.queue_declare(queue, passive=True).method.message_count == 40


def test_a_wake_for_some_vias_wakes_their_relays_and_the_unrouted_one_for_any_other(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sinks: dict[str, Sink] = {"amqp": RecordingSink(), "status-relay": RecordingSink()}
    threads = relay_threads(Settings(), store, sinks, None)
    monkeypatch.setattr(threads, "_start", lambda: None)  # watch the wake-ups, run no thread

    def woken_by(vias: list[str] | None) -> set[str]:
        for worker in threads.workers:
            worker.wake_event.clear()
        threads.wake(vias)
        return {worker.name for worker in threads.workers if worker.wake_event.is_set()}

    assert woken_by(["status-relay"]) == {"status-relay"}
    assert woken_by(["amqp", "status-relay"]) == {"amqp", "status-relay"}
    assert woken_by(["ray"]) == {"unrouted"}
    assert woken_by([]) == set()
    assert woken_by(None) == {"amqp", "status-relay", "unrouted"}


def test_while_limits_may_hold_rows_back_every_relay_is_woken_after_a_batch(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"ncsa.wordcount": TargetLimit(max_in_flight=1)}
    throttle = Throttle(SqlAdmissions(store.engine, store.clock), lambda: limits, recheck_s=1.0)
    sinks: dict[str, Sink] = {"amqp": RecordingSink(), "status-relay": RecordingSink()}
    threads = relay_threads(Settings(), store, sinks, None, throttle)
    monkeypatch.setattr(threads, "_start", lambda: None)  # watch the wake-ups, run no thread

    threads.wake(["status-relay"])

    assert all(worker.wake_event.is_set() for worker in threads.workers)


class RoundLog(Relay):
    """A relay that only notes when each of its rounds started."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__(store, {})
        self.started: list[float] = []
        self.rounds = threading.Semaphore(0)

    def run_once(self, limit: int = 500) -> RelayStats:
        self.started.append(time.monotonic())
        self.rounds.release()
        return RelayStats()


def gapped_threads(relay: RoundLog, gap_s: float) -> RelayThreads:
    """One worker that never polls on its own: it runs only when woken."""
    return RelayThreads([RelayWorker("amqp", relay)], poll_s=WAIT_S * 4, backlog_gap_s=gap_s)


def test_a_wake_after_a_full_batch_waits_out_the_backlog_gap_since_the_last_round(
    sql_store: SqlStore,
) -> None:
    relay = RoundLog(sql_store)
    threads = gapped_threads(relay, gap_s=0.3)
    try:
        threads.wake()
        assert relay.rounds.acquire(timeout=WAIT_S)
        threads.wake(backlog=True)
        assert relay.rounds.acquire(timeout=WAIT_S)
    finally:
        threads.close(timeout_s=WAIT_S)
    assert relay.started[1] - relay.started[0] >= 0.3


def test_a_wake_without_a_backlog_ends_the_backlog_gap_at_once(sql_store: SqlStore) -> None:
    relay = RoundLog(sql_store)
    threads = gapped_threads(relay, gap_s=WAIT_S * 4)  # longer than the test waits
    try:
        threads.wake()
        assert relay.rounds.acquire(timeout=WAIT_S)
        threads.wake(backlog=True)
        assert not relay.rounds.acquire(timeout=0.2), "a backlog's wake ran before its gap"
        threads.wake()
        assert relay.rounds.acquire(timeout=WAIT_S), "a quiet queue's wake waited for the gap"
    finally:
        threads.close(timeout_s=WAIT_S)


def test_closing_ends_a_backlog_gap_without_another_round(sql_store: SqlStore) -> None:
    relay = RoundLog(sql_store)
    threads = gapped_threads(relay, gap_s=WAIT_S * 4)
    threads.wake()
    assert relay.rounds.acquire(timeout=WAIT_S)
    threads.wake(backlog=True)
    threads.close(timeout_s=WAIT_S)
    assert not any(thread.is_alive() for thread in threads._threads)
    assert len(relay.started) == 1
