"""The Ray job poller on the session's local Ray: Ray's states and reasons in job timelines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

from ray.job_submission import JobSubmissionClient

from switchboard.cli import main
from switchboard.ray_poller import RayJobPoller
from switchboard.relay import Relay
from switchboard.settings import Settings
from switchboard.sinks.ray_jobs import from_settings, job_client
from tests.sinks.test_ray_batch_jobs import batch_rule, fire
from tests.test_ray_targets import file_added

pytestmark = pytest.mark.ray


def job_document(url: str, job_id: str) -> dict[str, Any]:
    shown = CliRunner().invoke(main, ["job", job_id, "--json", "--database", url])
    assert shown.exit_code == 0, shown.output
    document: dict[str, Any] = json.loads(shown.output)
    return document


def submit_and_poll(
    tmp_path: Path, ray_address: str, rule: str
) -> tuple[str, str, RayJobPoller, Any]:
    """Fire the rule, send its job to Ray, poll until Ray's word is in its timeline."""
    url, store = fire(tmp_path, rule, [file_added(1)])
    settings = Settings(ray_address=ray_address, database_url=url, rabbitmq_uri="")
    [row] = store.due_outbox(10)
    assert Relay(store, {"ray": from_settings(settings, 60.0, store)}).run_once().sent == 1
    poller = RayJobPoller(store.engine, job_client(settings))
    deadline = time.monotonic() + 60
    while not poller.poll_once() and time.monotonic() < deadline:
        time.sleep(0.5)
    return url, row.submission.job_id, poller, store


def test_a_job_waiting_for_a_resource_no_node_has_shows_rays_reason_in_its_timeline(
    ray_client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    rule = batch_rule(
        1,
        '{processor: "switchboard_ray_batch.examples:FileFacts"}',
        resources="{custom: {nosuch: 1}}",
    )
    url, job_id, poller, store = submit_and_poll(tmp_path, ray_address, rule)
    try:
        again = poller.poll_once()
        waiting = job_document(url, job_id)
    finally:
        store.close()
        ray_client.stop_job(job_id)

    assert again == 0  # the same word from Ray is recorded once
    assert waiting["status"] == "submitted"
    [reason] = [e for e in waiting["timeline"] if e["source"] == "ray"]
    assert "waiting for resources" in reason["message"]


def test_a_job_that_fails_on_ray_ends_failed_with_its_exit_code_in_its_timeline(
    ray_client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    rule = batch_rule(1, '{processor: "no_such_package.models:Classifier"}')
    url, job_id, poller, store = submit_and_poll(tmp_path, ray_address, rule)
    try:
        deadline = time.monotonic() + 90
        while job_document(url, job_id)["status"] != "failed" and time.monotonic() < deadline:
            poller.poll_once()
            time.sleep(0.5)
        ended = job_document(url, job_id)
        assert poller.poll_once() == 0  # an ended job is not asked about again
    finally:
        store.close()

    assert ended["status"] == "failed"
    last = ended["timeline"][-1]
    assert (last["status"], last["source"]) == ("failed", "ray")
    assert "exit code 2" in last["message"]
