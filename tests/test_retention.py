"""Retention: old sent/failed outbox rows and ledger ids are pruned in batches; pending stay."""

from __future__ import annotations

from pathlib import Path

from switchboard.app import retention
from switchboard.daemon import Backoff, Daemon
from switchboard.engine import Engine
from switchboard.metrics import Metrics
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.relay import Relay
from switchboard.retention import Pruner
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.store.sql import SqlStore
from switchboard.testing import ListSource, RecordingSink
from tests.conftest import FakeClock
from tests.integration.clowder_events import RULES_YAML, expected_job, record
from tests.store.helpers import submission

DAY_S = 86_400


def queue_jobs(store: SqlStore, *jobs: str) -> None:
    with store.unit_of_work() as uow:
        for job in jobs:
            uow.add_submission(submission(job), {"job_id": job}, {"message_id": job})
            uow.record_processed(f"msg-{job}")


def settle(store: SqlStore, sent: list[str], failed: list[str]) -> None:
    for row in store.claim_due(100, lease_s=30):
        job = row.submission.job_id
        if job in sent:
            store.mark_sent_many([row])
        elif job in failed:
            store.mark_attempt_failed(job, "HTTP 404", None, give_up=True)
        else:
            store.release_claims([job], row.claim_token or "")


class Ticks:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_sent_and_failed_rows_and_ledger_ids_past_the_retention_are_pruned_pending_rows_stay(
    store: SqlStore, clock: FakeClock
) -> None:
    queue_jobs(store, "old-sent", "old-failed", "old-pending")
    settle(store, sent=["old-sent"], failed=["old-failed"])
    clock.advance(31 * DAY_S)
    queue_jobs(store, "new-sent")
    settle(store, sent=["new-sent"], failed=[])

    Pruner(store, retention_days=30)()

    assert sorted(r.submission.job_id for r in store.recent_submissions(10)) == [
        "new-sent",
        "old-pending",
    ]
    with store.unit_of_work() as uow:
        assert not uow.already_processed("msg-old-sent")
        assert uow.already_processed("msg-new-sent")


def test_pruning_takes_small_batches_and_comes_back_at_once_while_a_backlog_remains(
    store: SqlStore, clock: FakeClock
) -> None:
    jobs = [f"job-{n}" for n in range(7)]
    queue_jobs(store, *jobs)
    settle(store, sent=jobs, failed=[])
    clock.advance(31 * DAY_S)
    ticks = Ticks()
    pruner = Pruner(store, retention_days=30, batch_rows=3, interval_s=60, monotonic=ticks)
    left = []
    for _ in range(3):
        pruner()
        left.append(sum(store.counts_by_status().values()))
    assert left == [4, 1, 0]
    queue_jobs(store, "job-late")
    settle(store, sent=["job-late"], failed=[])
    clock.advance(31 * DAY_S)
    pruner()  # nothing left over last time: resting until the interval has passed
    assert store.counts_by_status()["sent"] == 1
    ticks.now_s += 61
    pruner()
    assert store.counts_by_status()["sent"] == 0


def test_a_retention_of_zero_keeps_everything_forever(store: SqlStore) -> None:
    assert retention(Settings(retention_days=0), store) == []
    assert len(retention(Settings(), store)) == 1


def test_a_redelivered_message_older_than_the_retention_is_processed_again(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor="test.ext", via="amqp"))
    engine = Engine(load_rules([str(rules)]))
    sink = RecordingSink()

    def consume() -> None:
        source = ListSource([record(1)])
        relay = Relay(store, {"amqp": sink}, clock=clock)
        daemon = Daemon(
            source,
            Processor(engine, store, extractor_message),
            relay,
            backoff=Backoff(initial_s=0.001),
        )
        source.on_exhausted = daemon.stop
        assert daemon.run() == 0

    try:
        consume()
        consume()  # a redelivery inside the window: a duplicate, nothing sent again
        assert sink.job_ids == [expected_job(1, "test.ext")]
        clock.advance(31 * DAY_S)
        Pruner(store, retention_days=30)()
        consume()  # the same message after the window: new to the ledger, submitted again
        assert sink.job_ids == [expected_job(1, "test.ext")] * 2
    finally:
        engine.close()


def test_metrics_listen_only_on_this_machine_unless_told_otherwise() -> None:
    assert Settings().metrics_host == "127.0.0.1"
    assert Settings.from_env({"SWITCHBOARD_METRICS_HOST": "0.0.0.0"}).metrics_host == "0.0.0.0"
    server = Metrics().serve(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_retention_days_is_read_from_the_environment() -> None:
    assert Settings().retention_days == 30
    assert Settings.from_env({"SWITCHBOARD_RETENTION_DAYS": "0"}).retention_days == 0
    assert Settings.from_env({"SWITCHBOARD_RETENTION_DAYS": "1.5"}).retention_days == 1.5
