"""Waiting on Ray jobs in tests, and private token heads (the session's head is `ray_address`)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from switchboard.ray_local import LocalRay

JOB_S = 90.0


def finished(client: Any, job_id: str, timeout_s: float = JOB_S) -> Any:
    """Wait for the job to end; its final JobStatus (fails the test, with the logs, if not)."""
    deadline = time.monotonic() + timeout_s
    while not (status := client.get_job_status(job_id)).is_terminal():
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {status}:\n{client.get_job_logs(job_id)}")
        time.sleep(0.2)
    return status


def token_head(monkeypatch: pytest.MonkeyPatch) -> LocalRay:
    """A private head (not started yet) that requires a fresh token, with no Ray address or
    auth variable left in the environment, so only what the test passes counts."""
    from switchboard.ray_local import RAY_ADDRESS_VARIABLES, LocalRay

    for variable in (*RAY_ADDRESS_VARIABLES, "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    return LocalRay(num_cpus=1, auth_token=uuid.uuid4().hex)
