"""Building a batch job from an outbox row, without Ray: members, spec, folder, arguments."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from switchboard.errors import SubmissionRejected
from switchboard.model import Submission
from switchboard.ports import OutboxRow
from switchboard.ray_batch.submission import SHIPPED_RUNNER
from switchboard.sink_registry import plain_options
from switchboard.sinks.ray_batch_job import BatchJobs
from switchboard.sinks.ray_jobs import cluster_python


class Members:
    """`ports.JobMembers` over lists (the store's answers, as the relay would read them)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def manifest_members(self, manifest_id: str) -> Any:
        return (
            {"id": f"f{n}", "name": f"p{n}.tif", "path": f"/d/p{n}.tif"} for n in range(self.count)
        )

    def dataset_members(self, dataset_id: str) -> list[dict[str, str]]:
        return [{"id": "only", "name": "only.tif", "path": "only.tif"}]


def row(
    options: dict[str, Any], body: dict[str, Any] | None = None, **parameters: Any
) -> OutboxRow:
    submission = Submission(
        job_id="job-1",
        rule="plots",
        extractor="plot-classifier",
        resource_type="dataset",
        resource_id="ds-1",
        via="ray",
        parameters=parameters,
        event_message_id="m-1",
        options=plain_options(options),
    )
    return OutboxRow(submission, body or {}, {}, "pending", 0, datetime.now(UTC))


BATCH = {"batch": {"processor": "plotml:Classifier", "post_metadata": True}}


def test_a_9000_member_firing_travels_in_the_job_folder_with_the_runner(tmp_path: Path) -> None:
    jobs = BatchJobs(
        members=Members(9000),
        status_url="amqp://u:secret@mq/",
        status_queue="sb.status",
        clowder_url="http://clowder",
        clowder_key="ours",
        output_dir="/results",
    )
    options = {**BATCH, "resources": {"num_gpus": 1}, "runtime_env": {"pip": ["plotml"]}}
    kwargs = jobs.submit_kwargs(row(options, manifest_id="m"), tmp_path / "job", {"rule": "plots"})

    assert kwargs["entrypoint"] == f"python -m {SHIPPED_RUNNER} job.json"
    assert kwargs["runtime_env"] == {"pip": ["plotml"], "working_dir": str(tmp_path / "job")}
    assert (kwargs["submission_id"], kwargs["entrypoint_num_gpus"]) == ("job-1", 1)
    assert len((tmp_path / "job" / "members.jsonl").read_text().splitlines()) == 9000
    assert (tmp_path / "job" / SHIPPED_RUNNER / "runner.py").is_file()
    spec = json.loads((tmp_path / "job" / "job.json").read_text())
    assert spec["output"] == "/results/job-1"
    assert spec["status"]["reply_to"] == "sb.status" and spec["status"]["job_id"] == "job-1"
    assert spec["clowder"] == {
        "url": "http://clowder",
        "key": "ours",
        "api_version": 1,
        "extractor": "plot-classifier",
    }
    assert "secret" not in json.dumps(kwargs)  # the broker URL is in the folder, not Ray's view


def test_the_messages_own_host_and_key_win_and_a_job_without_a_collection_runs_the_dataset(
    tmp_path: Path,
) -> None:
    jobs = BatchJobs(members=Members(0), clowder_url="http://ours", clowder_key="ours")
    body = {"host": "http://theirs", "secretKey": "theirs"}
    jobs.submit_kwargs(row(BATCH, body), tmp_path / "job", {})
    spec = json.loads((tmp_path / "job" / "job.json").read_text())
    assert (spec["clowder"]["url"], spec["clowder"]["key"]) == ("http://theirs", "theirs")
    assert "status" not in spec  # no broker configured: no progress updates
    members = (tmp_path / "job" / "members.jsonl").read_text().splitlines()
    assert [json.loads(m)["id"] for m in members] == ["only"]


def test_post_metadata_without_any_clowder_address_is_refused_for_good(tmp_path: Path) -> None:
    with pytest.raises(SubmissionRejected, match="post_metadata needs Clowder's address"):
        BatchJobs(members=Members(1)).submit_kwargs(row(BATCH, manifest_id="m"), tmp_path, {})


def test_a_ray_on_this_machine_runs_our_python_and_a_remote_one_its_own() -> None:
    assert cluster_python("http://127.0.0.1:8265") == sys.executable
    assert cluster_python("http://ray-head:8265") == "python"
