"""Claims of a daemon that died come back at once (its session lock is gone), a live one's never."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from switchboard.relay import Relay
from switchboard.store.claim_owner import LOCK_CLASS
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.conftest import PG_CONNINFO, FakeClock
from tests.test_relay_fencing import HealthySink, StuckSink, queue_jobs, run_in_thread

pytestmark = pytest.mark.postgres
LEASE_S = 30.0


@pytest.fixture
def stores(pg_url: str, pg_schema: str, clock: FakeClock) -> Iterator[Callable[[], SqlStore]]:
    """Makes stores on one database, as separate daemons would have (closed afterwards)."""
    upgrade(pg_url, pg_schema)
    made: list[SqlStore] = []

    def make() -> SqlStore:
        made.append(SqlStore(pg_url, schema=pg_schema, clock=clock))
        return made[-1]

    yield make
    for store in made:
        store.close()


def claim_until_some(store: SqlStore, timeout_s: float = 20.0) -> list[str]:
    """Claim until rows come back: the server ends a closed session's backend asynchronously."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        rows = store.claim_due(100, LEASE_S)
        if rows:
            return sorted(row.submission.job_id for row in rows)
        time.sleep(0.1)
    return []


def end_session_of(store: SqlStore) -> None:
    """What a database restart does to one daemon's lock session (the daemon lives on)."""
    owner = store._owner
    assert owner is not None
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            (LOCK_CLASS, owner.owner_id),
        ).fetchall()
    assert ended == [(True,)]


def test_rows_claimed_by_a_daemon_that_is_gone_are_claimed_again_without_waiting_for_the_lease(
    stores,
) -> None:
    dead, survivor = stores(), stores()
    jobs = queue_jobs(dead, 5, via="ray")
    assert len(dead.claim_due(100, LEASE_S)) == 5
    dead.close()  # its session ends, as when the process is killed

    assert claim_until_some(survivor) == sorted(jobs)  # the clock never moved


def test_a_live_daemons_claims_are_left_alone(stores) -> None:
    live, other = stores(), stores()
    queue_jobs(live, 5, via="ray")
    assert len(live.claim_due(100, LEASE_S)) == 5

    time.sleep(1.0)  # past the reaper's interval, so it really looks
    assert other.claim_due(100, LEASE_S) == []


def test_a_daemon_whose_session_ended_sends_none_of_the_rows_taken_back(
    stores, clock: FakeClock
) -> None:
    first, second = stores(), stores()
    jobs = queue_jobs(first, 3, via="ray")
    stuck = StuckSink(late_success=True)
    thread, results = run_in_thread(Relay(first, {"ray": stuck}, lease_s=LEASE_S, clock=clock))
    assert stuck.entered.wait(30)  # inside its first send

    end_session_of(first)
    healthy = HealthySink()
    relay = Relay(second, {"ray": healthy}, lease_s=LEASE_S, clock=clock)
    give_up = time.monotonic() + 20
    while len(healthy.sent) < 3 and time.monotonic() < give_up:
        relay.run_once()
        time.sleep(0.1)
    assert sorted(healthy.sent) == jobs

    stuck.release.set()
    thread.join(30)
    assert not thread.is_alive()
    [stats] = results
    assert stuck.calls == [[jobs[0]]]  # the send in flight, nothing after it
    assert (stats.sent, stats.lost) == (0, 3)


def test_a_daemon_takes_its_lock_again_after_its_session_ended(stores) -> None:
    store = stores()
    queue_jobs(store, 2, via="ray")
    assert store.claim_due(1, LEASE_S)
    end_session_of(store)
    done = threading.Event()
    give_up = time.monotonic() + 20
    while not done.is_set() and time.monotonic() < give_up:
        if store.claim_due(1, LEASE_S):  # only claims while its lock is held again
            done.set()
        time.sleep(0.1)
    assert done.is_set()
    assert store._owner is not None and store._owner.ensure()


@pytest.mark.parametrize("late_success", [False, True], ids=["stuck-send-times-out", "succeeds"])
def test_a_relay_that_skips_the_first_renewal_is_still_fenced_off_rows_taken_over_later(
    stores, clock: FakeClock, late_success: bool
) -> None:
    first, second = stores(), stores()
    jobs = queue_jobs(first, 3, via="ray")
    stuck = StuckSink(late_success=late_success)
    relay = Relay(first, {"ray": stuck}, lease_s=LEASE_S, renew_after_s=LEASE_S / 3, clock=clock)
    thread, results = run_in_thread(relay)
    assert stuck.entered.wait(30)  # its first send, unrenewed: the claim just taken covers it

    clock.advance(LEASE_S + 1)
    healthy = HealthySink()
    assert Relay(second, {"ray": healthy}, lease_s=LEASE_S, clock=clock).run_once().sent == 3

    stuck.release.set()
    thread.join(30)
    [stats] = results
    assert stuck.calls == [[jobs[0]]]  # the later rows' renewals failed: never sent
    assert (stats.sent, stats.lost) == (0, 3)
    assert sorted(healthy.sent) == jobs


class CountingStore:
    """Wraps a store, counting claim renewals."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.renewals = 0

    def renew_claims(self, *args, **kwargs):
        self.renewals += 1
        return self.store.renew_claims(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_only_sends_after_the_first_of_a_claim_renew_it(stores, clock: FakeClock) -> None:
    counting = CountingStore(stores())
    jobs = queue_jobs(counting.store, 4, via="ray")
    healthy = HealthySink()
    relay = Relay(counting, {"ray": healthy}, lease_s=LEASE_S, renew_after_s=10.0, clock=clock)
    stats = relay.run_once()
    assert (stats.sent, sorted(healthy.sent)) == (4, jobs)
    assert counting.renewals == 3  # one-by-one sends: all but the first renew
