"""Clowder v2 job states through `GET /api/v2/jobs/{id}/summary`, against FakeClowder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from switchboard.clowder import ClowderClient
from switchboard.jobs.clowder_states import ClowderJobStates, clowder_job_state
from switchboard.jobs.job_states import JobState, StateSourceDown, UnknownJob
from switchboard.testing import FakeClowder


@pytest.fixture
def clowder() -> Iterator[FakeClowder]:
    with FakeClowder(api_version=2) as fake:
        yield fake


def states(clowder: FakeClowder, key: str | None = None) -> ClowderJobStates:
    client = ClowderClient(clowder.url, key or clowder.api_key, 5.0, retries=0, api_version=2)
    return ClowderJobStates(client)


def a_job(clowder: FakeClowder) -> str:
    client = ClowderClient(clowder.url, clowder.api_key, 5.0, retries=0, api_version=2)
    answer = client.submit_extraction("file", "f-1", "ncsa.wordcount", {})
    return str(answer["job_id"])


def test_a_job_clowder_just_created_is_submitted(clowder: FakeClowder) -> None:
    state = states(clowder).state(a_job(clowder))

    assert isinstance(state, JobState) and state.status == "submitted"


def test_a_finished_job_has_clowder_s_status_message_and_finish_time(clowder: FakeClowder) -> None:
    job = a_job(clowder)
    clowder.set_job(job, "ERROR", "File not found.")

    state = states(clowder).state(job)

    assert isinstance(state, JobState)
    assert (state.status, state.message) == ("failed", "File not found.")
    assert state.at == datetime.fromisoformat(clowder.jobs[job]["finished"]).replace(tzinfo=UTC)
    assert clowder.requests[-1].path == f"/api/v2/jobs/{job}/summary"


def test_a_job_clowder_does_not_know_is_unknown(clowder: FakeClowder) -> None:
    state = states(clowder).state("65a1f0c2e4b0a1b2c3d4e5f7")

    assert (
        isinstance(state, UnknownJob) and "knows no job 65a1f0c2e4b0a1b2c3d4e5f7" in state.message
    )


@pytest.mark.parametrize("trouble", ["a 503", "a wrong key"])
def test_clowder_answering_5xx_or_refusing_the_key_is_down_not_unknown(
    clowder: FakeClowder, trouble: str
) -> None:
    job = a_job(clowder)
    if trouble == "a 503":
        clowder.fail_next(1, 503)

    with pytest.raises(StateSourceDown) as down:
        states(clowder, key="wrong" if trouble == "a wrong key" else None).state(job)

    assert clowder.url in str(down.value)


def test_clowder_unreachable_is_down() -> None:
    with FakeClowder(api_version=2) as gone:
        url = gone.url
    client = ClowderClient(url, "k", 2.0, retries=0, api_version=2)

    with pytest.raises(StateSourceDown):
        ClowderJobStates(client).state("65a1f0c2e4b0a1b2c3d4e5f7")


def test_clowder_s_status_words_and_times_are_read_in_either_spelling() -> None:
    state = clowder_job_state(
        {"status": "EventListenerJobStatus.STARTED", "started": "2026-12-01T10:00:00.5"}
    )

    assert state.status == "started"
    assert state.at == datetime(2026, 12, 1, 10, 0, 0, 500000, tzinfo=UTC)
    with pytest.raises(StateSourceDown):
        clowder_job_state({"status": "EXPLODED"})
