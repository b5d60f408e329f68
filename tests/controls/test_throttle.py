"""Back-pressure: the relay sends no more than a target's limits allow and holds the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest
from sqlalchemy import select

from switchboard.errors import RuleLoadError, SettingsError, SubmissionRejected
from switchboard.relay import Relay
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.store.sql import SqlStore
from switchboard.store.statements import submissions
from switchboard.store.throttle_sql import SqlAdmissions, throttled_counts
from switchboard.testing import RecordingSink
from switchboard.throttle import TargetLimit, Throttle, parse_rate
from tests.conftest import Database, FakeClock
from tests.store.helpers import submission

TARGET = "terra.limited"


def queue_jobs(store: SqlStore, count: int, extractor: str = TARGET) -> list[str]:
    ids = [f"job-{extractor}-{i:05d}" for i in range(count)]
    with store.unit_of_work() as uow:
        uow.add_submissions(
            [
                (submission(job, extractor=extractor), {"job_id": job}, {"message_id": job})
                for job in ids
            ]
        )
    return ids


def throttle(store: SqlStore, limits: Mapping[str, TargetLimit], **kw: float) -> Throttle:
    return Throttle(SqlAdmissions(store.engine, store.clock), lambda: limits, **kw)


def relay(store: SqlStore, sink: RecordingSink, limits: Mapping[str, TargetLimit]) -> Relay:
    return Relay(store, {"amqp": sink}, throttle=throttle(store, limits))


def held(store: SqlStore) -> dict[str, int]:
    with store.engine.connect() as connection:
        return throttled_counts(connection)


def test_max_in_flight_sends_that_many_and_holds_the_rest_as_throttled(
    store: SqlStore, clock: FakeClock
) -> None:
    queue_jobs(store, 10)
    queue_jobs(store, 4, extractor="terra.free")
    sink = RecordingSink()
    relay(store, sink, {TARGET: TargetLimit(max_in_flight=3)}).drain()
    sent = [r.submission.extractor for r in sink.rows]
    assert sent.count(TARGET) == 3 and sent.count("terra.free") == 4
    assert held(store) == {TARGET: 7}
    assert store.counts_by_status()["pending"] == 7
    clock.advance(5)  # the held rows come due again, but nothing finished: still held
    relay(store, sink, {TARGET: TargetLimit(max_in_flight=3)}).drain()
    assert len(sink.rows) == 7


def test_a_row_that_failed_for_good_frees_its_place_in_flight(
    store: SqlStore, clock: FakeClock
) -> None:
    ids = queue_jobs(store, 5)
    limits = {TARGET: TargetLimit(max_in_flight=2)}
    sink = RecordingSink(fail_times=1, error=SubmissionRejected)
    relay(store, sink, limits).drain()
    assert sink.job_ids == [ids[1]]  # ids[0] was refused: failed, no longer in flight
    clock.advance(5)
    relay(store, sink, limits).drain()
    assert sink.job_ids == [ids[1], ids[2]]


def test_a_row_admitted_longer_ago_than_the_in_flight_timeout_no_longer_counts(
    store: SqlStore, clock: FakeClock
) -> None:
    queue_jobs(store, 4)
    limits = {TARGET: TargetLimit(max_in_flight=2)}
    sink = RecordingSink()
    gate = throttle(store, limits, in_flight_timeout_s=60)
    Relay(store, {"amqp": sink}, throttle=gate).drain()
    assert len(sink.rows) == 2
    clock.advance(61)
    Relay(store, {"amqp": sink}, throttle=gate).drain()
    assert len(sink.rows) == 4
    assert held(store) == {}


def test_a_rate_admits_its_tokens_and_the_bucket_refills_with_time(
    store: SqlStore, clock: FakeClock
) -> None:
    queue_jobs(store, 20)
    limits = {TARGET: TargetLimit(rate_per_s=5)}
    sink = RecordingSink()
    relay(store, sink, limits).drain()
    assert len(sink.rows) == 5  # a full bucket: one second's worth
    clock.advance(1)
    relay(store, sink, limits).drain()
    assert len(sink.rows) == 10
    clock.advance(0.4)
    relay(store, sink, limits).drain()
    assert len(sink.rows) == 12


class SlowAdmissions(SqlAdmissions):
    """Admissions that dawdle once they hold the target's lock: without the lock, a second
    relay would count the same rows in flight meanwhile and admit past the limit."""

    def _lock(self, connection, target, limit):  # type: ignore[no-untyped-def]
        tokens = super()._lock(connection, target, limit)
        time.sleep(0.2)
        return tokens


@pytest.mark.postgres
def test_two_relays_racing_admit_no_more_than_one_max_in_flight(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    stores = [SqlStore(pg_url, schema=pg_schema) for _ in range(2)]
    try:
        queue_jobs(stores[0], 600)
        limits = {TARGET: TargetLimit(max_in_flight=50)}
        sinks = [RecordingSink(), RecordingSink()]
        relays = [
            Relay(
                s,
                {"amqp": sink},
                chunk_size=7,
                throttle=Throttle(SlowAdmissions(s.engine, s.clock), lambda: limits, recheck_s=0),
            )
            for s, sink in zip(stores, sinks, strict=True)
        ]
        # the target's throttle row exists already (creating it would serialise the first
        # round) and both stores are connected
        for s in stores:
            SqlAdmissions(s.engine, s.clock).admit(
                TARGET, limits[TARGET], [], in_flight_timeout_s=3600, recheck_s=0
            )
        start = threading.Barrier(2)

        def run(r: Relay) -> None:
            start.wait()
            for _ in range(12):
                r.run_once(limit=40)

        threads = [threading.Thread(target=run, args=(r,)) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        sent = sinks[0].job_ids + sinks[1].job_ids
        assert len(sent) == len(set(sent)) == 50
        assert sinks[0].rows and sinks[1].rows  # both relays took part
        with stores[0].engine.connect() as connection:
            admitted = connection.execute(
                select(submissions.c.job_id).where(submissions.c.admitted_at.is_not(None))
            ).scalars()
            assert sorted(admitted) == sorted(sent)
    finally:
        for s in stores:
            s.close()


def test_limits_come_from_settings_and_rule_files(tmp_path) -> None:
    settings = Settings(limits='{"a.target": {"max_in_flight": 5, "rate": "120/min"}}')
    assert settings.target_limits() == {"a.target": TargetLimit(5, 2.0)}
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {name: r, submit: {extractor: b}}\n"
        "limits:\n  b.target: {max_in_flight: 50, rate: 10/s}\n"
    )
    assert load_rules([str(path)]).limits == {"b.target": TargetLimit(50, 10.0)}


def test_bad_limits_are_refused_with_path_and_line(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules: []\nlimits:\n  b.target:\n    max_in_flight: 0\n    rate: often\n    burst: 3\n"
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rules([str(path)])
    shown = sorted(str(p) for p in caught.value.problems)
    assert shown == [
        f"{path}:4: limits: target 'b.target': max_in_flight must be a whole number >= 1: 0",
        f"{path}:5: limits: target 'b.target': rate must be like '10/s' or '600/min', not 'often'",
        f"{path}:6: limits: target 'b.target': unknown limit 'burst' (known: max_in_flight, rate)",
    ]
    with pytest.raises(SettingsError, match="SWITCHBOARD_LIMITS: target 'x': unknown limit"):
        Settings(limits='{"x": {"most": 1}}')


def test_rates_read_per_second_minute_or_hour() -> None:
    assert parse_rate("10/s") == 10.0
    assert parse_rate("600/min") == 10.0
    assert parse_rate(3) == 3.0
    with pytest.raises(ValueError, match="positive"):
        parse_rate(0)


def finish(store: SqlStore, job: str, status: str = "succeeded") -> None:
    """The extractor reported the job ended (as the status queue records it)."""
    from switchboard.store.job_records import Update, record_update, update_key

    with store.engine.begin() as connection:
        now = store.clock()
        update = Update(update_key("test", job, status), status, now, "done", "extractor")
        assert record_update(connection, job, update, now).applied


def test_a_job_the_extractor_reports_ended_frees_its_place_in_flight(
    store: SqlStore, clock: FakeClock
) -> None:
    ids = queue_jobs(store, 4)
    limits = {TARGET: TargetLimit(max_in_flight=2)}
    sink = RecordingSink()
    relay(store, sink, limits).drain()
    assert sink.job_ids == ids[:2]
    finish(store, ids[0])
    finish(store, ids[1], "skipped")
    clock.advance(5)
    relay(store, sink, limits).drain()
    assert sink.job_ids == ids


def test_switchboard_jobs_shows_a_held_job_as_throttled(
    store: SqlStore, database: Database
) -> None:
    from click.testing import CliRunner

    from switchboard.cli import main

    queue_jobs(store, 3)
    relay(store, RecordingSink(), {TARGET: TargetLimit(max_in_flight=1)}).drain()
    url = database.url
    if database.schema is not None:
        url = f"{url}?options=-csearch_path%3D{database.schema}"
    output = CliRunner().invoke(main, ["jobs", "--database", url]).output
    assert output.count("pending (throttled)") == 2
    assert output.count("submitted") == 1
