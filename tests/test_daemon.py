"""The daemon loop with a list source, an SQLite store and a recording sink: no broker needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.daemon import Backoff, Daemon
from switchboard.engine import Engine
from switchboard.errors import BrokerError, StoreError
from switchboard.metrics import Metrics
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.relay import Relay
from switchboard.relay_threads import RelayThreads
from switchboard.rules import load_rules
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListSource, RecordingSink
from tests.integration.clowder_events import RULES_YAML, expected_job, record

EXTRACTOR = "test.ext"


class StrictSource(ListSource):
    """A ListSource that, like RabbitMQ, refuses to ack a tag twice and offers keepalive."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keepalives = 0
        self.acks: list[int] = []

    def ack_through(self, delivery_tag: int) -> None:
        assert delivery_tag not in self.acked, f"tag {delivery_tag} acked twice"
        self.acks.append(delivery_tag)
        super().ack_through(delivery_tag)

    def keepalive(self) -> None:
        self.keepalives += 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'daemon.db'}"
    upgrade(url)
    made = SqlStore(url)
    yield made
    made.close()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    return Engine(load_rules([str(rules)]))


def make_daemon(source, store, engine, sink, builder=extractor_message, **kwargs) -> Daemon:
    processor = Processor(engine, store, builder)
    relay = Relay(store, {"amqp": sink}, keepalive=getattr(source, "keepalive", None))
    daemon = Daemon(
        source, processor, relay, batch_size=4, backoff=Backoff(initial_s=0.001), **kwargs
    )
    source.on_exhausted = daemon.stop
    return daemon


def test_events_are_committed_acked_and_relayed(store, engine):
    source = StrictSource([record(n) for n in range(10)])
    sink = RecordingSink()
    assert make_daemon(source, store, engine, sink).run() == 0
    assert source.unacked == []
    assert sorted(sink.job_ids) == sorted(expected_job(n, EXTRACTOR) for n in range(10))
    assert store.counts_by_status()["sent"] == 10


def test_one_multiple_ack_per_batch_after_the_commit(store, engine):
    source = StrictSource([record(n) for n in range(10)])
    make_daemon(source, store, engine, RecordingSink()).run()
    assert source.acks == [4, 8, 10]


def test_redelivered_event_creates_no_second_submission(store, engine):
    source = StrictSource([record(1), record(2), record(1)])
    sink = RecordingSink()
    make_daemon(source, store, engine, sink).run()
    assert sink.job_ids == [expected_job(1, EXTRACTOR), expected_job(2, EXTRACTOR)]
    assert source.unacked == []


def test_malformed_event_is_dead_lettered_and_the_rest_acked_once(store, engine):
    source = StrictSource([record(1), b"not json", record(3), b"{}"])
    sink = RecordingSink()
    make_daemon(source, store, engine, sink).run()
    assert [d.delivery_tag for d, _ in source.dead_letters] == [2, 4]
    assert "JSON" in source.dead_letters[0][1]
    assert source.unacked == []
    assert len(sink.rows) == 2


def test_poison_event_is_isolated_and_the_rest_of_the_batch_goes_through(store, engine):
    def builder(event, submission):
        if event.message_id == "msg-00000002":
            raise ValueError("cannot build this one")
        return extractor_message(event, submission)

    source = StrictSource([record(n) for n in range(4)])
    sink = RecordingSink()
    make_daemon(source, store, engine, sink, builder=builder).run()
    ((poisoned, reason),) = source.dead_letters
    assert poisoned.delivery_tag == 3
    assert "cannot build this one" in reason
    assert len(sink.rows) == 3
    assert source.unacked == []


def test_a_failing_store_acks_nothing_and_the_daemon_carries_on(store, engine):
    source = StrictSource([record(n) for n in range(8)])

    class FlakyStore:
        failures = 1

        def __getattr__(self, name):
            return getattr(store, name)

        def unit_of_work(self):
            if self.failures:
                self.failures -= 1
                raise StoreError("database went away")
            return store.unit_of_work()

    unacked_at_reconnect: list[list[int]] = []
    source.reconnect = lambda: unacked_at_reconnect.append([d.delivery_tag for d in source.unacked])
    sink = RecordingSink()
    daemon = make_daemon(source, FlakyStore(), engine, sink)
    assert daemon.run() == 0
    # a real broker redelivers these after the reconnect
    assert unacked_at_reconnect == [[1, 2, 3, 4]]
    assert source.acks == [8]
    assert len(sink.rows) == 4


def test_periodic_hooks_run_once_per_iteration_after_the_relay(store, engine):
    calls: list[str] = []
    source = StrictSource([record(n) for n in range(8)])
    sink = RecordingSink()

    def hook() -> None:
        calls.append(f"hook after {len(sink.rows)} sent")

    make_daemon(source, store, engine, sink, periodic=[hook]).run()
    assert calls == ["hook after 4 sent", "hook after 8 sent"]


def test_a_periodic_hook_that_raises_is_logged_not_fatal(store, engine, caplog):
    source = StrictSource([record(n) for n in range(8)])
    sink = RecordingSink()

    def broken() -> None:
        raise KeyError("oops")

    assert make_daemon(source, store, engine, sink, periodic=[broken]).run() == 0
    assert len(sink.rows) == 8
    assert "periodic task broken failed" in caplog.text


@pytest.mark.parametrize("error", [StoreError("db down"), BrokerError("broker down")])
def test_a_periodic_hook_losing_a_connection_takes_the_reconnect_path(store, engine, error):
    source = StrictSource([record(n) for n in range(8)])
    reconnects: list[int] = []
    source.reconnect = lambda: reconnects.append(1)
    raised: list[Exception] = []

    def hook() -> None:
        if not raised:
            raised.append(error)
            raise error

    sink = RecordingSink()
    assert make_daemon(source, store, engine, sink, periodic=[hook]).run() == 0
    assert reconnects == [1]
    assert len(sink.rows) == 8


def test_the_source_is_kept_alive_while_a_batch_and_the_relay_run(store, engine):
    source = StrictSource([record(n) for n in range(8)])
    make_daemon(source, store, engine, RecordingSink()).run()
    assert source.keepalives >= 4  # after each batch's processing and each relay chunk


def test_stop_leaves_the_batch_in_hand_unacked(store, engine):
    source = StrictSource([record(n) for n in range(8)])
    sink = RecordingSink()
    daemon = make_daemon(source, store, engine, sink, periodic=[lambda: daemon.stop()])
    assert daemon.run() == 0
    assert [d.delivery_tag for d in source.unacked] == [5, 6, 7, 8]
    assert source.stopped
    assert len(sink.rows) == 4


def test_batches_are_counted_in_metrics(store, engine):
    metrics = Metrics()
    source = StrictSource([record(1), record(1), b"nope", record(2)])
    make_daemon(source, store, engine, RecordingSink(), metrics=metrics).run()
    assert metrics.value("switchboard_events_total") == 4
    assert metrics.value("switchboard_batches_total") == 1
    assert metrics.value("switchboard_duplicate_events_total") == 1
    assert metrics.value("switchboard_dead_letters_total", reason="malformed") == 1
    assert metrics.value("switchboard_submissions_total", target=EXTRACTOR, status="queued") == 2
    assert metrics.value("switchboard_batch_seconds_count") == 1


def test_metrics_are_served_over_http_when_asked():
    import urllib.request

    metrics = Metrics()
    metrics.events.inc(3)
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "switchboard_events_total 3.0" in text


def test_a_reload_failing_with_an_unexpected_error_keeps_the_last_good_rules(store, engine, caplog):
    source = StrictSource([record(n) for n in range(8)])
    sink = RecordingSink()
    daemon = make_daemon(source, store, engine, sink)

    def reload_rules() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    daemon.reload_rules = reload_rules
    daemon.request_reload()
    assert daemon.run() == 0
    assert len(sink.rows) == 8  # the old rules kept matching after the failed reload
    assert "rules not reloaded" in caplog.text and "RecursionError" in caplog.text


def test_a_rule_file_nested_too_deeply_is_refused_on_reload_not_fatal(
    store, engine, tmp_path, caplog
):
    rules = tmp_path / "rules.yaml"
    source = StrictSource([record(n) for n in range(8)])
    sink = RecordingSink()
    daemon = make_daemon(source, store, engine, sink)

    def reload_rules() -> None:
        daemon.processor.engine = Engine(load_rules([str(rules)]))

    daemon.reload_rules = reload_rules
    rules.write_text("- name: deep\n  when: " + "[" * 5000 + "\n")
    daemon.request_reload()
    assert daemon.run() == 0
    assert len(sink.rows) == 8
    assert f"{rules}:2: invalid YAML: nested too deeply" in caplog.text


def test_an_unexpected_error_ends_the_loop_with_exit_code_1_and_closes_the_source(
    store, engine, caplog
):
    source = StrictSource([record(n) for n in range(8)])
    daemon = make_daemon(source, store, engine, RecordingSink())

    def broken_heartbeat() -> None:
        raise RuntimeError("a bug")

    daemon.heartbeat = broken_heartbeat
    assert daemon.run() == 1
    assert source.stopped  # unacked deliveries go back to the broker
    assert "switchboard daemon failed" in caplog.text and "RuntimeError: a bug" in caplog.text


def test_the_batch_log_separates_new_events_from_duplicates(store, engine, caplog):
    source = StrictSource([record(1), record(1), b"nope"])
    with caplog.at_level("INFO", logger="switchboard.daemon"):
        make_daemon(source, store, engine, RecordingSink()).run()
    [batch] = [r for r in caplog.records if r.getMessage() == "batch"]
    assert (batch.events, batch.new, batch.duplicates, batch.dead_lettered) == (3, 1, 1, 1)
    assert not hasattr(batch, "committed")


class WakeLog(RelayThreads):
    """Relay threads that run nothing and note whether each wake came with a backlog."""

    def __init__(self) -> None:
        super().__init__([])
        self.backlogs: list[bool] = []

    def wake(self, vias=None, *, backlog=False) -> None:
        self.backlogs.append(backlog)


def test_only_a_full_batch_wakes_the_relay_threads_with_a_backlog(store, engine):
    source = StrictSource([record(n) for n in range(10)])
    relay = WakeLog()
    daemon = Daemon(source, Processor(engine, store, extractor_message), relay, batch_size=4)
    source.on_exhausted = daemon.stop
    assert daemon.run() == 0
    assert relay.backlogs[:3] == [True, True, False]  # batches of 4, 4 and the last 2
