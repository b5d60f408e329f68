"""The batch job's entrypoint: spec and members in, one result per member and a summary out."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .clowder_metadata import MetadataPoster
from .members import Member, MembersError, read_members
from .pool import ProcessorLoadError, run_pool
from .progress import StatusReporter
from .results import ResultsWriter, Summary, write_summary
from .spec import SPEC_FILE, BatchSpec, SpecError, load_spec, resolve
from .worker import Record

log = logging.getLogger("switchboard.ray_batch")

EXIT_OK, EXIT_TOO_MANY_FAILED, EXIT_UNUSABLE = 0, 1, 2


def run_job(spec: BatchSpec, folder: Path, members: Sequence[Member]) -> Summary:
    """Run the members not yet recorded in the output folder; the job's summary.

    Needs a connected Ray (`ray.init()`); the processor is imported only in the pool's actors.
    """
    started_unix_s, started = time.time(), time.monotonic()
    output = resolve(folder, spec.output)
    reporter = StatusReporter(spec.status) if spec.status is not None else None
    poster = MetadataPoster(spec.clowder) if spec.post_metadata and spec.clowder else None
    total = len(members)
    error: str | None = None
    first_result_s: float | None = None
    with ResultsWriter(output) as results:
        todo = [member for member in members if member.id not in results.seen]
        if reporter is not None:
            reporter.start(total)

        def on_records(records: list[Record]) -> None:
            results.write(records)
            if poster is not None:
                poster.post_records(records)
            if reporter is not None:
                reporter.progress(results.done, results.failed, total)

        try:
            if todo:
                pool_started = time.monotonic()
                stats = run_pool(spec, todo, on_records)
                if stats.first_result_s is not None:
                    first_result_s = pool_started - started + stats.first_result_s
        except ProcessorLoadError as exc:
            error = str(exc)
        done, failed = results.done, results.failed
    failed_all = failed + (total - done - failed if error else 0)
    elapsed_s = time.monotonic() - started
    summary = Summary(
        job_id=spec.job_id,
        total=total,
        done=done,
        failed=failed_all,
        elapsed_s=round(elapsed_s, 3),
        members_per_s=round(len(todo) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        max_error_fraction=spec.max_error_fraction,
        ok=error is None and (failed_all / total if total else 0.0) <= spec.max_error_fraction,
        started_unix_s=started_unix_s,
        first_result_s=first_result_s,
        error=error,
        metadata_posted=poster.posted if poster is not None else 0,
        metadata_failed=poster.failed if poster is not None else 0,
    )
    write_summary(output, summary)
    if reporter is not None:
        reporter.finish(summary.ok, done, failed_all, total)
    return summary


def main(argv: Sequence[str]) -> int:
    """`python -m switchboard.ray_batch [job.json]`; 0 when the failed fraction is allowed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec_path = Path(argv[0] if argv else SPEC_FILE)
    try:
        spec, folder = load_spec(spec_path)
        members = read_members(resolve(folder, spec.members))
    except (SpecError, MembersError) as exc:
        print(f"switchboard.ray_batch: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    import ray

    ray.init()  # inside a Ray job: joins the job's cluster
    try:
        summary = run_job(spec, folder, members)
    finally:
        ray.shutdown()
    print(json.dumps(asdict(summary)))
    if summary.error is not None:
        print(f"switchboard.ray_batch: {summary.error}", file=sys.stderr)
        return EXIT_UNUSABLE
    if not summary.ok:
        print(
            f"switchboard.ray_batch: {summary.failed}/{summary.total} members failed, more than "
            f"max_error_fraction={spec.max_error_fraction}",
            file=sys.stderr,
        )
        return EXIT_TOO_MANY_FAILED
    return EXIT_OK
