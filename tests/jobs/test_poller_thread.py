"""The poller's thread: it polls on its own, a hung system holds up only it, close ends it;
and the composition root builds it only for the systems that are configured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from switchboard.jobs import statuses as st
from switchboard.jobs.clowder_states import ClowderJobStates
from switchboard.jobs.poller import JobPoller
from switchboard.jobs.poller_thread import PollerThread
from switchboard.jobs.ray_states import RayJobStates
from switchboard.jobs.store import JobStore
from switchboard.jobs.wiring import job_poller
from switchboard.settings import Settings
from switchboard.store.job_records import Update, update_key
from switchboard.store.leases import Lease
from switchboard.store.sql import SqlStore
from switchboard.testing import FakeJobStates
from tests.integration.conftest import wait_for
from tests.jobs.test_poller import submitted
from tests.silent_server import SilentServer


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_the_thread_polls_on_its_own_and_gives_its_lease_up_when_closed(
    sql_store: SqlStore,
) -> None:
    submitted(sql_store, "job-1")
    ray = FakeJobStates()
    ray.set("job-1", st.SUCCEEDED, "Job finished successfully.")
    jobs = JobStore(sql_store.engine)
    lease = Lease(sql_store.engine, "job-poller", 30.0, holder="a")
    thread = PollerThread(JobPoller(jobs, [ray], lease, interval_s=0.05))

    thread.start()
    thread.start()  # a periodic hook: once started, calling it again does nothing
    assert thread.running
    try:
        wait_for(lambda: (j := jobs.job("job-1")) and j.status == "succeeded", 30, "a poll")
    finally:
        thread.close()

    assert ray.closed
    assert Lease(sql_store.engine, "job-poller", 30.0, holder="b").acquire()


def test_a_hung_dashboard_holds_up_only_the_poller_thread(
    sql_store: SqlStore, silent: SilentServer
) -> None:
    submitted(sql_store, "job-1")
    jobs = JobStore(sql_store.engine)
    poller = JobPoller(jobs, [RayJobStates(silent.url, timeout_s=60.0)], None, interval_s=0.05)
    thread = PollerThread(poller)

    thread.start()  # returns at once: the question is asked on the poller's thread
    assert silent.accepted.wait(30), "the poller never asked the dashboard"
    # the caller goes on using the database while the poller waits for an answer
    started = Update(update_key("t"), st.STARTED, datetime.now(UTC), "go", st.SOURCE_EXTRACTOR)
    outcome = jobs.record("job-1", started)
    silent.close()  # the request fails at once: the poller backs off, and closes promptly
    thread.close(timeout_s=30)

    assert outcome.applied and outcome.job is not None and outcome.job.status == "started"
    assert not thread.running


def test_the_composition_root_polls_ray_and_clowder_v2_only_when_configured(
    sql_store: SqlStore,
) -> None:
    def sources(**changes: object) -> list[type]:
        built = job_poller(Settings(**changes), sql_store)  # type: ignore[arg-type]
        return [] if built is None else [type(s) for s in built.poller.sources]

    assert sources() == []
    assert sources(ray_address="http://ray:8265") == [RayJobStates]
    assert sources(clowder_url="http://clowder", clowder_version=1) == []
    assert sources(clowder_url="http://clowder", clowder_version=2) == [ClowderJobStates]
    assert sources(ray_address="http://ray:8265", job_poll_interval_s=0) == []


def test_the_poll_interval_comes_from_the_environment_and_may_not_be_negative() -> None:
    from switchboard.errors import SettingsError

    assert Settings.from_env({"SWITCHBOARD_JOB_POLL_INTERVAL_S": "2.5"}).job_poll_interval_s == 2.5
    assert Settings.from_env({"RAY_AUTH_TOKEN": "t0k"}).ray_auth_token == "t0k"
    assert "t0k" not in repr(Settings(ray_auth_token="t0k"))
    with pytest.raises(SettingsError, match="SWITCHBOARD_JOB_POLL_INTERVAL_S"):
        Settings(job_poll_interval_s=-1)
