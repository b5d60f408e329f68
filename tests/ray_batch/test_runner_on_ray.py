"""The batch runner submitted as a real Ray job (working_dir upload) to the session's local Ray."""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pika.adapters.blocking_connection import BlockingChannel

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

from ray.job_submission import JobStatus, JobSubmissionClient

from switchboard.ray_batch.members import Member
from switchboard.ray_batch.spec import BatchSpec, StatusTarget
from switchboard.ray_batch.submission import batch_submit_kwargs, write_job_folder
from tests.broker import URI
from tests.ray_head import finished

pytestmark = pytest.mark.ray

PROCESSORS = Path(__file__).with_name("processors.py")


@pytest.fixture
def client(ray_client: JobSubmissionClient) -> JobSubmissionClient:
    return ray_client


def members_in(folder: Path, count: int) -> list[Member]:
    """`count` members whose paths are real files under `folder` (the Probe writes beside them)."""
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for n in range(count):
        path = folder / f"plot-{n:04d}.tif"
        path.write_text("pixels")
        members.append(Member(id=f"file-{n:04d}", name=path.name, path=str(path)))
    return members


def submit(
    client: JobSubmissionClient,
    tmp_path: Path,
    members: list[Member],
    driver: dict[str, Any] | None = None,
    **batch: Any,
) -> tuple[str, Path]:
    """Build the job folder (the test's processors shipped in it) and submit the runner.

    `driver` is the job's `resources:` (its driver's); `batch` the per-task options.
    """
    output = tmp_path / "out"
    spec = BatchSpec(**{"processor": "processors:Probe", "output": output, **batch}, job_id="job-1")
    folder = write_job_folder(tmp_path / "job", spec, members)
    shutil.copy(PROCESSORS, folder / "processors.py")
    kwargs = batch_submit_kwargs(
        folder,
        submission_id=f"batch-{uuid.uuid4().hex[:12]}",
        resources=driver,
        metadata={"rule": "plots", "target": "plot-classifier"},
        python=sys.executable,
    )
    return client.submit_job(**kwargs), output


def results(output: Path) -> list[dict[str, Any]]:
    lines = (output / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_200_member_job_records_every_member_exactly_once_on_few_actors(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 200)

    job, output = submit(client, tmp_path, members, batch_size=16, concurrency=2)

    assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    records = results(output)
    assert len(records) == 200
    assert {r["member"] for r in records} == {m.id for m in members}
    assert all(r["ok"] for r in records)
    assert len({r["result"]["loaded_in"] for r in records}) <= 2  # the model loaded per actor
    summary = json.loads((output / "summary.json").read_text())
    assert (summary["total"], summary["done"], summary["failed"]) == (200, 200, 0)
    assert summary["members_per_s"] > 0
    assert client.get_job_info(job).metadata == {"rule": "plots", "target": "plot-classifier"}


def test_a_member_that_raises_is_recorded_with_its_traceback_and_the_others_succeed(
    client: JobSubmissionClient, tmp_path: Path, channel: BlockingChannel
) -> None:
    members = members_in(tmp_path / "data", 20)
    queue = f"test.status.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, auto_delete=False)

    try:
        job, output = submit(
            client,
            tmp_path,
            members,
            processor_args={"fail": ["plot-0007.tif"]},
            batch_size=5,
            max_error_fraction=0.1,
            status=StatusTarget(URI, queue, "corr-1", "dataset-1", "plot-classifier", "job-1", 0),
        )
        assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
        statuses = []
        while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
            statuses.append(json.loads(got[2])["status"])
    finally:
        channel.queue_delete(queue)

    records = {r["member"]: r for r in results(output)}
    failed = records.pop("file-0007")
    assert failed["ok"] is False
    assert failed["error"] == "ValueError: cannot read plot-0007.tif"
    assert "in process_file" in failed["traceback"]
    assert failed["path"].endswith("plot-0007.tif")
    assert len(records) == 19 and all(r["ok"] for r in records.values())
    # progress went to the status queue as the batches finished (every_s=0: after each)
    assert statuses[0] == "StatusMessage.start: Started processing 20 members."
    assert "StatusMessage.processing: 5/20 done, " in statuses[1]
    assert statuses[-1] == "StatusMessage.done: Done processing: 20/20 done, 1 failed."


def test_a_rerun_of_a_job_skips_the_members_it_already_recorded(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 10)
    output = tmp_path / "out"
    output.mkdir()
    earlier = [
        {"member": m.id, "path": m.path, "ok": True, "result": {"earlier": True}}
        for m in members[:4]
    ]
    (output / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in earlier))

    job, _ = submit(client, tmp_path, members)

    assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    records = results(output)
    assert [r["member"] for r in records] == [m.id for m in members]
    assert [r["result"].get("earlier", False) for r in records] == [True] * 4 + [False] * 6


def test_per_task_options_reach_ray_inside_the_task(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 6)

    job, output = submit(
        client, tmp_path, members, num_cpus=0.5, resources={"bigdb": 0.5}, concurrency=2
    )

    assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    for record in results(output):
        assigned = record["result"]["resources"]
        assert assigned.get("bigdb") == 0.5
        assert assigned.get("CPU") == 0.5


def test_a_batch_whose_actor_died_is_retried_and_each_member_recorded_once(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 30)

    job, output = submit(
        client,
        tmp_path,
        members,
        processor_args={"die": ["plot-0012.tif"]},
        batch_size=4,
        max_retries=1,
    )

    assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert "lost its actor" in client.get_job_logs(job)  # the member did kill its actor
    records = results(output)
    assert sorted(r["member"] for r in records) == [m.id for m in members]
    assert all(r["ok"] for r in records)


def test_a_batch_that_kills_its_actor_past_its_retries_fails_its_members_alone(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 24)

    job, output = submit(
        client,
        tmp_path,
        members,
        processor_args={"always_die": ["plot-0013.tif"]},
        batch_size=4,
        concurrency=1,  # the batch behind the dying one is queued on the same actor
        max_retries=0,
        max_error_fraction=0.5,
    )

    assert finished(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    records = {r["member"]: r for r in results(output)}
    assert len(records) == 24
    failed = sorted(member for member, r in records.items() if not r["ok"])
    assert failed == ["file-0012", "file-0013", "file-0014", "file-0015"]
    assert records["file-0013"]["error"].startswith(
        "actor died on every attempt (1): ActorDiedError"
    )


def test_a_job_over_its_error_fraction_exits_non_zero_after_recording_every_member(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    members = members_in(tmp_path / "data", 10)

    job, output = submit(
        client,
        tmp_path,
        members,
        processor_args={"fail": ["plot-0001.tif", "plot-0002.tif"]},
        max_error_fraction=0.1,
    )

    assert finished(client, job) == JobStatus.FAILED
    assert len(results(output)) == 10
    summary = json.loads((output / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["ok"]) == (8, 2, False)
    assert "2/10 members failed" in client.get_job_logs(job)


def test_a_processor_that_cannot_load_fails_the_job_naming_the_reason(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    job, output = submit(
        client, tmp_path, members_in(tmp_path / "data", 3), processor="processors:Broken"
    )

    assert finished(client, job) == JobStatus.FAILED
    assert "no model file" in client.get_job_logs(job)
    assert json.loads((output / "summary.json").read_text())["failed"] == 3


def test_a_job_asking_for_a_resource_no_node_has_stays_pending_and_ray_says_why(
    client: JobSubmissionClient, tmp_path: Path
) -> None:
    job, _ = submit(
        client, tmp_path, members_in(tmp_path / "data", 1), driver={"custom": {"nosuch": 1}}
    )
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            info = client.get_job_info(job)
            assert info.status == JobStatus.PENDING
            time.sleep(0.5)
        assert "waiting for resources" in (info.message or "")
    finally:
        client.stop_job(job)
