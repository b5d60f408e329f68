"""Benchmark (not a test): how fast the job poller gets through unfinished jobs.

Creates N submitted `via: ray` jobs in a fresh database (SQLite file by default, or
`--database postgresql+psycopg://...` with `--schema`), then times two poller rounds against
a FakeJobStates (no network: what is measured is paging and recording): the first records a
`started` update for every job, the second finds nothing new (what a steady round costs).
Prints jobs/s of each round.

Run: python bench/job_poller.py [--jobs 2000] [--database URL --schema NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.jobs import statuses as st
from switchboard.jobs.poller import JobPoller
from switchboard.jobs.store import JobStore
from switchboard.model import Submission
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import FakeJobStates


def seed(store: SqlStore, count: int) -> list[str]:
    """`count` ray jobs, handed over by the relay (so `submitted`)."""
    ids = [f"bench-{n:06d}" for n in range(count)]
    with store.unit_of_work() as uow:
        for job_id in ids:
            submission = Submission(
                job_id=job_id,
                rule="bench",
                extractor="bench.ray",
                resource_type="file",
                resource_id=job_id,
                via="ray",
                parameters={},
                event_message_id=job_id,
            )
            uow.add_submission(submission, {}, {})
    while rows := store.claim_due(500, lease_s=60):
        store.mark_sent_many(rows)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--database", default="")
    parser.add_argument("--schema", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url, args.schema)
        store = SqlStore(url, schema=args.schema)
        try:
            ids = seed(store, args.jobs)
            ray = FakeJobStates()
            for job_id in ids:
                ray.set(job_id, st.STARTED, "Job is currently running.")
            poller = JobPoller(JobStore(store.engine), [ray], None)
            for label in ("first round (records every job)", "steady round (nothing new)"):
                began = time.perf_counter()
                stats = poller.poll_once()
                took = time.perf_counter() - began
                print(
                    f"{label}: {stats.asked} jobs asked, {stats.recorded} recorded in "
                    f"{took:.2f} s = {stats.asked / took:,.0f} jobs/s"
                )
        finally:
            store.close()


if __name__ == "__main__":
    main()
