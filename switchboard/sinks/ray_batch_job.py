"""Builds a `batch:` Ray job from an outbox row: its folder (spec, members, the runner itself)
and `submit_job`'s arguments. The processor is named, never imported: it runs on the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SubmissionRejected
from ..ports import JobMembers, OutboxRow
from ..ray_batch.members import MembersError
from ..ray_batch.spec import BatchSpec, ClowderTarget, StatusTarget
from ..ray_batch.submission import (
    BatchJobError,
    batch_submit_kwargs,
    ship_runner,
    write_job_folder,
)
from ..sink_registry import as_json


@dataclass(frozen=True)
class BatchJobs:
    """What the Ray sink needs to build batch jobs besides the row.

    `members` reads a fired collection's manifest (or a dataset's files); `status_url` and
    `status_queue` say where the runner publishes progress (our status queue, so it lands in
    the job's timeline); `clowder_url` / `clowder_key` are the fallbacks for `post_metadata`
    when the message carries no host / key; `output_dir` puts results at `<dir>/<job id>`.
    """

    members: JobMembers | None = None
    status_url: str = field(default="", repr=False)  # holds the broker password
    status_queue: str = ""
    clowder_url: str = ""
    clowder_key: str = field(default="", repr=False)
    clowder_version: int = 1
    output_dir: str = ""
    python: str = "python"
    every_s: float = 5.0

    def job_members(self, row: OutboxRow) -> Iterable[Mapping[str, Any]]:
        """The manifest's members for a collection firing, else the dataset's known files."""
        submission = row.submission
        if self.members is None:
            raise SubmissionRejected(f"job {submission.job_id}: no member store to read from")
        manifest = submission.parameters.get("manifest_id")
        if isinstance(manifest, str) and manifest:
            return self.members.manifest_members(manifest)
        if submission.resource_type == "dataset" and submission.resource_id:
            return self.members.dataset_members(submission.resource_id)
        return [{"id": submission.resource_id, "path": submission.resource_id}]

    def spec(self, row: OutboxRow) -> BatchSpec:
        """The runner's spec: the rule's `batch:` options plus where progress and results go."""
        submission = row.submission
        batch = dict(as_json(submission.options)["batch"])
        status = None
        if self.status_url and self.status_queue:
            status = StatusTarget(
                url=self.status_url,
                reply_to=self.status_queue,
                correlation_id=submission.job_id,
                file_id=submission.resource_id,
                extractor_id=submission.extractor,
                job_id=submission.job_id,
                every_s=self.every_s,
            )
        clowder = None
        if batch.get("post_metadata"):
            clowder = self.clowder_target(row)
        output = Path(self.output_dir) / submission.job_id if self.output_dir else Path("out")
        return BatchSpec(
            **batch, job_id=submission.job_id, status=status, clowder=clowder, output=output
        )

    def clowder_target(self, row: OutboxRow) -> ClowderTarget:
        """The message's own host and key (the job's, as pyclowder would use), else ours."""
        body = row.body
        host = body.get("host") if isinstance(body.get("host"), str) else ""
        key = body.get("secretKey") if isinstance(body.get("secretKey"), str) else ""
        url, key = host or self.clowder_url, key or self.clowder_key
        if not url:
            raise SubmissionRejected(
                f"job {row.submission.job_id}: post_metadata needs Clowder's address "
                "(the message has no host and CLOWDER_URL is not set)"
            )
        return ClowderTarget(
            url=url, key=key, api_version=self.clowder_version, extractor=row.submission.extractor
        )

    def submit_kwargs(self, row: OutboxRow, folder: Path, metadata: Mapping[str, str]) -> Any:
        """Write the job's folder and give `submit_job`'s keyword arguments for it.

        SubmissionRejected (failed at once) for a job that cannot be built: the same row
        would fail the same way on every retry.
        """
        submission = row.submission
        options = as_json(submission.options)
        try:
            write_job_folder(folder, self.spec(row), self.job_members(row))
            runner = ship_runner(folder)
            return batch_submit_kwargs(
                folder,
                submission_id=submission.job_id,
                resources=options.get("resources"),
                runtime_env=options.get("runtime_env"),
                metadata=metadata,
                python=self.python,
                runner=runner,
            )
        except (BatchJobError, MembersError, TypeError) as exc:
            raise SubmissionRejected(f"job {submission.job_id}: {exc}") from exc
