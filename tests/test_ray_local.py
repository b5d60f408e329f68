"""The private local Ray head: started on free ports, token auth when asked, stopped by its pid."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

from ray.job_submission import JobSubmissionClient

from switchboard.errors import DeliveryFailed, SubmissionRejected
from switchboard.sinks.ray_jobs import RayJobSink
from tests.processes import alive
from tests.ray_head import token_head
from tests.sinks.test_ray_jobs import ray_row

pytestmark = pytest.mark.ray


def status_of(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def sent_with_token(sink: RayJobSink) -> None:
    """Send one job, retrying as the relay would while a new head has no agent yet (a 500)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            sink.send(ray_row("true"))
            return
        except DeliveryFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_a_head_with_a_token_refuses_requests_and_sinks_without_it_and_stops_by_its_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = token_head(monkeypatch)

    with head as address:
        jobs = f"{address}/api/jobs/"
        assert status_of(jobs, {}) == 401
        assert status_of(jobs, {"Authorization": "Bearer wrong"}) == 403
        assert status_of(jobs, head.headers) == 200
        assert JobSubmissionClient(address, headers=head.headers).list_jobs() == []
        for token, says in (("", "set RAY_AUTH_TOKEN"), ("wrong", "RAY_AUTH_TOKEN is not")):
            with pytest.raises(SubmissionRejected, match=says) as refused:
                RayJobSink(address, auth_token=token).send(ray_row("true"))
            assert "wrong" not in str(refused.value)  # a token never reaches a message
        sent_with_token(RayJobSink(address, auth_token=head.auth_token or ""))
        pid, temp_dir = head.pid, Path(head.temp_dir)
        assert pid is not None and alive(pid)

    assert not alive(pid)
    assert not temp_dir.exists()


def test_the_session_head_answers_without_a_token_whatever_the_callers_environment(
    ray_address: str,
) -> None:
    # LocalRay starts heads without a token with RAY_AUTH_MODE=disabled, so a token file in
    # ~/.ray (which makes `ray start` turn token auth on) cannot lock the daemon's client out.
    assert status_of(f"{ray_address}/api/jobs/", {}) == 200
