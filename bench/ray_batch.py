"""Benchmark (not a test): the batch runner's members/s against a plain `ray.get` loop, same Ray.

It starts a private local Ray head (`switchboard.ray_local.LocalRay`), then submits two Ray jobs
over the same N member paths and the same trivial `process_file`
(`switchboard.ray_batch.examples:FileFacts`):

- the batch runner (`python -m switchboard.ray_batch job.json`, members shipped in its
  working_dir), with `--batch-size` and `--concurrency`;
- the CodeFlare template's way: one task per member, `ray.get([f.remote(p) for p in paths])`.

It reports members/s of each (the runner's own elapsed time, actor start included; the plain
loop's time around `ray.get`, worker start included), their ratio (target >= 0.8), each job's
wall time from submit to SUCCEEDED, and the runner's overhead per job: from submit to its first
batch of results recorded. A third job goes the daemon's way, through the Ray sink
(`RayJobSink.send` of a `batch:` outbox row: members read from a `ports.JobMembers`, the folder
written, the runner shipped in it, the upload): its overhead counts from the start of that send.

Run: python bench/ray_batch.py [--members 2000] [--cpus 2] [--batch-size 16] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ray.job_submission import JobStatus, JobSubmissionClient

from switchboard.model import Submission
from switchboard.ports import OutboxRow
from switchboard.ray_batch.members import Member
from switchboard.ray_batch.spec import BatchSpec
from switchboard.ray_batch.submission import batch_submit_kwargs, write_job_folder
from switchboard.ray_local import LocalRay
from switchboard.sink_registry import plain_options
from switchboard.sinks.ray_batch_job import BatchJobs
from switchboard.sinks.ray_jobs import RayJobSink

PLAIN_LOOP = """\
import json, sys, time
import ray
from switchboard.ray_batch.examples import FileFacts
from switchboard.ray_batch.members import read_members

facts = FileFacts()

@ray.remote
def f(path):
    return facts.process_file(path)

paths = [m.path for m in read_members(__import__("pathlib").Path("members.jsonl"))]
ray.init()
started = time.monotonic()
results = ray.get([f.remote(p) for p in paths])
elapsed_s = time.monotonic() - started
assert len(results) == len(paths)
print("PLAIN " + json.dumps({"members": len(paths), "elapsed_s": elapsed_s}))
"""


def wait(client: JobSubmissionClient, job_id: str, timeout_s: float = 600.0) -> float:
    """Wait for the job to succeed; the time it ended (time.time())."""
    deadline = time.monotonic() + timeout_s
    while not (status := client.get_job_status(job_id)).is_terminal():
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {status} after {timeout_s:.0f} s")
        time.sleep(0.05)
    if status != JobStatus.SUCCEEDED:
        raise SystemExit(f"job {job_id} {status}:\n{client.get_job_logs(job_id)}")
    return time.time()


def run_batch(
    client: JobSubmissionClient, root: Path, members: list[Member], args: Any
) -> dict[str, float]:
    spec = BatchSpec(
        processor="switchboard.ray_batch.examples:FileFacts",
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        num_cpus=1,
        output=root / "out",
    )
    folder = write_job_folder(root / "batch", spec, members)
    kwargs = batch_submit_kwargs(
        folder, submission_id=f"bench-{uuid.uuid4().hex[:8]}", python=sys.executable
    )
    submitted = time.time()
    job = client.submit_job(**kwargs)
    ended = wait(client, job)
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert summary["done"] == len(members), summary
    return {
        "members_per_s": len(members) / summary["elapsed_s"],
        "wall_s": ended - submitted,
        "overhead_s": summary["started_unix_s"] + summary["first_result_s"] - submitted,
    }


class MemberList:
    """`ports.JobMembers` over a list (what the store streams from a fired manifest)."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members

    def manifest_members(self, manifest_id: str) -> Any:
        return (m.to_json() for m in self.members)

    def dataset_members(self, dataset_id: str) -> list[dict[str, str]]:
        return [m.to_json() for m in self.members]


def run_sink(address: str, root: Path, members: list[Member], args: Any) -> dict[str, float]:
    """The daemon's path: one `batch:` outbox row sent by the Ray sink."""
    job_id = f"bench-sink-{uuid.uuid4().hex[:8]}"
    batch = {
        "processor": "switchboard_ray_batch.examples:FileFacts",
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
    }
    submission = Submission(
        job_id=job_id,
        rule="bench",
        extractor="file-facts",
        resource_type="dataset",
        resource_id="bench-dataset",
        via="ray",
        parameters={"manifest_id": "bench-manifest"},
        event_message_id="bench",
        options=plain_options({"batch": batch}),
    )
    row = OutboxRow(submission, {}, {}, "pending", 0, datetime.now(UTC))
    output = root / "sink-out"
    jobs = BatchJobs(members=MemberList(members), output_dir=str(output), python=sys.executable)
    submitted = time.time()
    RayJobSink(address, batch=jobs).send(row)
    ended = wait(JobSubmissionClient(address), job_id)
    summary = json.loads((output / job_id / "summary.json").read_text())
    assert summary["done"] == len(members), summary
    return {
        "members_per_s": len(members) / summary["elapsed_s"],
        "wall_s": ended - submitted,
        "overhead_s": summary["started_unix_s"] + summary["first_result_s"] - submitted,
    }


def run_plain(client: JobSubmissionClient, root: Path, members: list[Member]) -> dict[str, float]:
    folder = write_job_folder(root / "plain", BatchSpec(processor="x:Y"), members)
    (folder / "plain_loop.py").write_text(PLAIN_LOOP)
    submitted = time.time()
    job = client.submit_job(
        entrypoint=shlex.join([sys.executable, "plain_loop.py"]),
        runtime_env={"working_dir": str(folder)},
    )
    ended = wait(client, job)
    line = next(x for x in client.get_job_logs(job).splitlines() if x.startswith("PLAIN "))
    figures = json.loads(line.removeprefix("PLAIN "))
    return {"members_per_s": figures["members"] / figures["elapsed_s"], "wall_s": ended - submitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each; the best is kept")
    args = parser.parse_args()
    members = [
        Member(id=f"file-{n}", path=f"/data/plots/plot-{n:05d}_left.tif")
        for n in range(args.members)
    ]
    with (
        tempfile.TemporaryDirectory(prefix="sbbench-") as temp,
        LocalRay(num_cpus=args.cpus) as address,
    ):
        client = JobSubmissionClient(address)
        batch: list[dict[str, float]] = []
        plain: list[dict[str, float]] = []
        sink: list[dict[str, float]] = []
        for round_number in range(args.rounds):
            root = Path(temp) / f"round-{round_number}"
            plain.append(run_plain(client, root, members))  # alternated: neither gets a warmer Ray
            batch.append(run_batch(client, root, members, args))
            sink.append(run_sink(address, root, members, args))
    best_batch = max(batch, key=lambda r: r["members_per_s"])
    best_plain = max(plain, key=lambda r: r["members_per_s"])
    print(
        f"{args.members} members, {args.cpus} CPUs, "
        f"batch_size {args.batch_size}, concurrency {args.concurrency}"
    )
    for name, runs in (("batch runner", batch), ("via the sink", sink), ("plain ray.get", plain)):
        said = ", ".join(f"{r['members_per_s']:.0f}/s (job {r['wall_s']:.1f} s)" for r in runs)
        print(f"  {name:14} {said}")
    ratio = best_batch["members_per_s"] / best_plain["members_per_s"]
    print(f"  ratio batch/plain (best of each): {ratio:.2f} (target >= 0.8)")
    for name, runs in (("runner", batch), ("sink", sink)):
        overheads = ", ".join(f"{r['overhead_s']:.2f} s" for r in runs)
        print(f"  overhead per job ({name}), submit -> first batch recorded: {overheads}")


if __name__ == "__main__":
    main()
