"""Ray job states from the dashboard's REST API: parsing JobDetails, and a real local Ray."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard.jobs.job_states import JobState, StateSourceDown, UnknownJob
from switchboard.jobs.ray_states import RayJobStates, ray_job_state
from switchboard.ray_local import free_port
from tests.ray_head import token_head

DETAILS: dict[str, Any] = {
    "type": "SUBMISSION",
    "submission_id": "job-1",
    "status": "FAILED",
    "message": "Job entrypoint command failed with exit code 3",
    "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR",
    "start_time": 1764583200000,
    "end_time": 1764583212500,
    "driver_exit_code": 3,
}


def test_a_failed_job_keeps_ray_s_message_error_type_and_exit_code_at_its_end_time() -> None:
    state = ray_job_state(DETAILS)

    assert state.status == "failed"
    assert state.at == datetime.fromtimestamp(1764583212.5, UTC)
    assert state.message == (
        "Job entrypoint command failed with exit code 3 "
        "[error_type JOB_ENTRYPOINT_COMMAND_ERROR; driver exit code 3]"
    )


def test_a_running_job_is_started_at_its_start_time() -> None:
    running = {**DETAILS, "status": "RUNNING", "message": "Job is currently running."}
    running.update(end_time=None, error_type=None, driver_exit_code=None)

    state = ray_job_state(running)

    assert (state.status, state.message) == ("started", "Job is currently running.")
    assert state.at == datetime.fromtimestamp(1764583200, UTC)


def test_an_answer_without_a_known_status_is_an_outage_not_a_state() -> None:
    with pytest.raises(StateSourceDown):
        ray_job_state({"status": "EXPLODED"})
    with pytest.raises(StateSourceDown):
        ray_job_state(["not", "details"])


def test_a_dashboard_nobody_listens_on_is_down() -> None:
    with pytest.raises(StateSourceDown) as down:
        RayJobStates(f"http://127.0.0.1:{free_port()}", timeout_s=2.0).state("job-1")

    assert "unreachable" in str(down.value)


def submit_when_ready(client: Any, entrypoint: str, job_id: str, wait_s: float = 60.0) -> None:
    """Submit, waiting while a head just started has no agent to run jobs yet (HTTP 500)."""
    give_up = time.monotonic() + wait_s
    while True:
        try:
            client.submit_job(entrypoint=entrypoint, submission_id=job_id)
            return
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(0.5)


@pytest.mark.ray
def test_a_real_ray_gives_a_job_s_state_and_says_404_for_an_unknown_id(
    ray_client: Any, ray_address: str
) -> None:
    from tests.ray_head import finished

    job_id = f"poll-{uuid.uuid4().hex[:8]}"
    submit_when_ready(ray_client, "python -c 'import sys; sys.exit(3)'", job_id)
    finished(ray_client, job_id)
    source = RayJobStates(ray_address)

    state = source.state(job_id)
    unknown = source.state(f"never-{job_id}")

    assert isinstance(state, JobState) and state.status == "failed"
    assert state.message is not None and "driver exit code 3" in state.message
    assert isinstance(unknown, UnknownJob) and "(HTTP 404)" in unknown.message


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_a_head_with_token_auth_is_asked_with_the_token_and_without_it_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = token_head(monkeypatch)

    with head as address:
        with_token = RayJobStates(address, auth_token=head.auth_token or "").state("no-such-job")
        with pytest.raises(StateSourceDown) as refused:
            RayJobStates(address).state("no-such-job")

    assert isinstance(with_token, UnknownJob)
    assert "refused our credentials (HTTP 401): check RAY_AUTH_TOKEN" in str(refused.value)
