"""Waiting on Ray jobs in tests (the session's head is the `ray_address` fixture)."""

from __future__ import annotations

import time
from typing import Any

import pytest

JOB_S = 90.0


def finished(client: Any, job_id: str, timeout_s: float = JOB_S) -> Any:
    """Wait for the job to end; its final JobStatus (fails the test, with the logs, if not)."""
    deadline = time.monotonic() + timeout_s
    while not (status := client.get_job_status(job_id)).is_terminal():
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {status}:\n{client.get_job_logs(job_id)}")
        time.sleep(0.2)
    return status
