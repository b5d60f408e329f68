"""Benchmark (not a test): what back-pressure costs the relay, on PostgreSQL, in one process.

Queues N outbox rows for one target and drains them through a `Relay` with a recording sink,
twice per round in fresh schemas: without limits (rows sent per second), and with
`max_in_flight` M and a long in-flight timeout (how fast the relay admits M and holds the rest
as throttled: held rows per second, the cost of looking at every waiting row once).

    .venv/bin/python bench/throttle.py [--rows 9000] [--max-in-flight 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.model import Submission
from switchboard.relay import Relay
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.store.throttle_sql import SqlAdmissions, throttled_counts
from switchboard.testing import RecordingSink
from switchboard.throttle import TargetLimit, Throttle

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET = "bench.target"


@contextmanager
def schema() -> Iterator[SqlStore]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        upgrade(URL, name)
        store = SqlStore(URL, schema=name)
        try:
            yield store
        finally:
            store.close()
    finally:
        with psycopg.connect(PG, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def queue(store: SqlStore, rows: int) -> None:
    entries = []
    for i in range(rows):
        job = f"job-{i:06d}"
        submission = Submission(job, "bench", TARGET, "file", f"f{i}", "amqp", {}, f"m{i}")
        entries.append((submission, {"job_id": job}, {"message_id": job}))
    with store.unit_of_work() as uow:
        uow.add_submissions(entries)


def unlimited(rows: int) -> float:
    with schema() as store:
        queue(store, rows)
        sink = RecordingSink()
        started = time.perf_counter()
        Relay(store, {"amqp": sink}).drain()
        elapsed = time.perf_counter() - started
        assert len(sink.rows) == rows
    return rows / elapsed


def limited(rows: int, most: int) -> float:
    with schema() as store:
        queue(store, rows)
        sink = RecordingSink()
        limits = {TARGET: TargetLimit(max_in_flight=most)}
        gate = Throttle(SqlAdmissions(store.engine, store.clock), lambda: limits, recheck_s=60)
        started = time.perf_counter()
        Relay(store, {"amqp": sink}, throttle=gate).drain()
        elapsed = time.perf_counter() - started
        with store.engine.connect() as connection:
            assert throttled_counts(connection) == {TARGET: rows - most}
        assert len(sink.rows) == most
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=9000)
    parser.add_argument("--max-in-flight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"sent_per_s_unlimited": [], "looked_at_per_s_limited": []}
    for _ in range(args.rounds):
        results["sent_per_s_unlimited"].append(round(unlimited(args.rows)))
        results["looked_at_per_s_limited"].append(round(limited(args.rows, args.max_in_flight)))
    print(json.dumps({"rows": args.rows, "max_in_flight": args.max_in_flight, **results}))


if __name__ == "__main__":
    main()
