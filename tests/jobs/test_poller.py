"""The job poller with fake job-state sources, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from switchboard.jobs import statuses as st
from switchboard.jobs.poller import JobPoller
from switchboard.jobs.store import JobStore
from switchboard.store.job_records import Update, update_key
from switchboard.store.leases import Lease
from switchboard.store.sql import SqlStore
from switchboard.testing import FakeJobStates
from tests.conftest import START, FakeClock
from tests.store.helpers import submission


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def submitted(store: SqlStore, job_id: str, via: str = "ray", clowder: str | None = None) -> None:
    """Queue `job_id` and have the relay hand it over (so its job is `submitted`)."""
    with store.unit_of_work() as uow:
        uow.add_submission(submission(job_id, via=via), {}, {})
    rows = [row for row in store.claim_due(50, lease_s=30) if row.submission.job_id == job_id]
    store.mark_sent_many(rows, {job_id: clowder} if clowder else None)


@pytest.fixture
def jobs(store: SqlStore, clock: FakeClock) -> JobStore:
    return JobStore(store.engine, clock)


@pytest.fixture
def ray() -> FakeJobStates:
    return FakeJobStates("ray", "ray")


def poller_of(jobs: JobStore, *sources: FakeJobStates, **kwargs: object) -> JobPoller:
    return JobPoller(jobs, sources, None, interval_s=10.0, **kwargs)  # type: ignore[arg-type]


def history(jobs: JobStore, job_id: str) -> list[tuple[str, str, str | None]]:
    return [(e.status, e.source, e.message) for e in jobs.timeline(job_id)]


def test_each_state_a_job_passes_is_recorded_once_however_often_it_is_polled(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    submitted(store, "job-1")
    poller = poller_of(jobs, ray)
    ray.set("job-1", st.STARTED, "Job is currently running.", at=START + timedelta(seconds=1))
    poller.poll_once()
    poller.poll_once()
    ray.set("job-1", st.SUCCEEDED, "Job finished successfully.", at=START + timedelta(seconds=9))
    rounds = [poller.poll_once(), poller.poll_once()]

    assert history(jobs, "job-1") == [
        ("submitted", "relay", None),
        ("started", "ray", "Job is currently running."),
        ("succeeded", "ray", "Job finished successfully."),
    ]
    job = jobs.job("job-1")
    assert job is not None
    assert (job.status, job.started_at, job.finished_at) == (
        "succeeded",
        START + timedelta(seconds=1),
        START + timedelta(seconds=9),
    )
    assert [r.recorded for r in rounds] == [1, 0]
    assert ray.asked == ["job-1"] * 3  # the ended job is not asked about again


def test_a_job_that_ended_is_neither_asked_about_nor_overridden(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    submitted(store, "job-1")
    ended = Update(update_key("x"), st.FAILED, START, "the extractor gave up", st.SOURCE_EXTRACTOR)
    jobs.record("job-1", ended)
    ray.set("job-1", st.STARTED, "Job is currently running.")

    poller_of(jobs, ray).poll_once()

    assert ray.asked == []
    job = jobs.job("job-1")
    assert job is not None and (job.status, job.latest_message) == (
        "failed",
        "the extractor gave up",
    )


def test_a_job_the_system_does_not_know_fails_once_saying_so_and_is_not_asked_again(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    submitted(store, "job-1")
    poller = poller_of(jobs, ray)

    poller.poll_once()
    poller.poll_once()

    assert history(jobs, "job-1")[1:] == [("failed", "ray", "ray knows no job job-1 (HTTP 404)")]
    assert ray.asked == ["job-1"]


def test_a_poll_never_moves_a_job_back_to_an_earlier_state(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    submitted(store, "job-1")
    progress = Update(update_key("p"), st.PROCESSING, START, "3 of 10", st.SOURCE_EXTRACTOR)
    jobs.record("job-1", progress)
    ray.set("job-1", st.STARTED, "Job is currently running.")

    poller_of(jobs, ray).poll_once()

    job = jobs.job("job-1")
    assert job is not None and (job.status, job.latest_message) == ("processing", "3 of 10")


def test_pending_jobs_and_other_vias_are_not_polled(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    with store.unit_of_work() as uow:
        uow.add_submission(submission("still-in-the-outbox", via="ray"), {}, {})
    submitted(store, "an-amqp-job", via="amqp")

    poller_of(jobs, ray).poll_once()

    assert ray.asked == []


def test_rest_jobs_are_polled_by_clowder_s_job_id_and_jobs_without_one_are_skipped(
    store: SqlStore, jobs: JobStore
) -> None:
    clowder = FakeJobStates("clowder", "clowder-api")
    submitted(store, "job-1", via="clowder-api", clowder="65a1f0c2e4b0a1b2c3d4e5f7")
    submitted(store, "job-2", via="clowder-api")
    clowder.set("65a1f0c2e4b0a1b2c3d4e5f7", st.SUCCEEDED, "Done.")

    poller_of(jobs, clowder).poll_once()

    assert clowder.asked == ["65a1f0c2e4b0a1b2c3d4e5f7"]
    assert history(jobs, "job-1")[-1] == ("succeeded", "clowder", "Done.")


def test_many_jobs_are_polled_page_by_page(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    for n in range(7):
        submitted(store, f"job-{n}")
        ray.set(f"job-{n}", st.SUCCEEDED, "ok")

    stats = poller_of(jobs, ray, page_size=3).poll_once()

    assert (stats.asked, stats.recorded) == (7, 7)
    assert {job.status for job in jobs.jobs()} == {"succeeded"}


def test_a_system_that_is_down_is_asked_again_after_a_back_off_doubling_to_its_cap(
    store: SqlStore,
    jobs: JobStore,
    ray: FakeJobStates,
    caplog: pytest.LogCaptureFixture,
    root_logging_restored: None,
) -> None:
    submitted(store, "job-1")
    ticks = Ticks()
    poller = poller_of(jobs, ray, max_backoff_s=40.0, monotonic=ticks)
    ray.down = "Ray at http://ray:8265 unreachable"
    asked_at: list[float] = []
    with caplog.at_level(logging.INFO, logger="switchboard.jobs.poller"):
        for _ in range(120):  # 120 s, a round every second
            before = len(ray.asked)
            poller.poll_once()
            if len(ray.asked) > before:
                asked_at.append(ticks.now - 1000.0)
            ticks.now += 1.0
        ray.down = None
        ray.set("job-1", st.SUCCEEDED, "ok")
        ticks.now += 40.0
        poller.poll_once()
        poller.poll_once()

    assert asked_at == [0.0, 10.0, 30.0, 70.0, 110.0]  # waits of 10, 20, 40, 40 (the cap)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Ray at http://ray:8265 unreachable" in warnings[0].getMessage()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "job poller: ray answers again; polling its jobs resumed"
    ]
    assert history(jobs, "job-1")[-1] == ("succeeded", "ray", "ok")


def test_one_system_being_down_does_not_hold_up_the_other(
    store: SqlStore, jobs: JobStore, ray: FakeJobStates
) -> None:
    clowder = FakeJobStates("clowder", "clowder-api")
    submitted(store, "job-1")
    submitted(store, "job-2", via="clowder-api", clowder="c-2")
    ray.down = "unreachable"
    clowder.set("c-2", st.STARTED, "Started.")

    stats = poller_of(jobs, ray, clowder).poll_once()

    assert stats.down == ("ray",)
    assert history(jobs, "job-2")[-1] == ("started", "clowder", "Started.")


# --- the lease: one poller for all daemons --------------------------------------------------------


@pytest.fixture
def leases(store: SqlStore, clock: FakeClock) -> Iterator[tuple[Lease, Lease]]:
    yield (
        Lease(store.engine, "job-poller", 30.0, holder="daemon-a", clock=clock),
        Lease(store.engine, "job-poller", 30.0, holder="daemon-b", clock=clock),
    )


def test_of_two_pollers_sharing_a_database_only_the_lease_holder_asks(
    store: SqlStore, jobs: JobStore, leases: tuple[Lease, Lease]
) -> None:
    submitted(store, "job-1")
    a, b = FakeJobStates(), FakeJobStates()
    first = JobPoller(jobs, [a], leases[0], interval_s=10.0)
    second = JobPoller(jobs, [b], leases[1], interval_s=10.0)

    rounds = [first.poll_once(), second.poll_once(), first.poll_once(), second.poll_once()]

    assert [r.active for r in rounds] == [True, False, True, False]
    assert (a.asked, b.asked) == (["job-1"], [])


def test_a_standby_takes_the_lease_over_once_the_holder_stops_renewing_it(
    leases: tuple[Lease, Lease], clock: FakeClock
) -> None:
    a, b = leases
    assert a.acquire() and not b.acquire()
    clock.advance(29)
    assert a.acquire()  # renewed: 30 s from now
    clock.advance(29)
    assert not b.acquire()
    clock.advance(2)
    assert b.acquire() and not a.acquire()


def test_a_lease_given_up_is_taken_over_at_once(leases: tuple[Lease, Lease]) -> None:
    a, b = leases
    assert a.acquire()
    a.release()
    assert b.acquire()


def test_closing_the_poller_closes_its_sources_and_gives_up_its_lease(
    jobs: JobStore, leases: tuple[Lease, Lease], ray: FakeJobStates
) -> None:
    poller = JobPoller(jobs, [ray], leases[0], interval_s=10.0)
    poller.poll_once()

    poller.close()

    assert ray.closed and leases[1].acquire()
