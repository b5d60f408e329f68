"""Benchmark (not a test): how long the status page, the JSON API and /metrics take to answer
over a large outbox and jobs table.

Fills a fresh PostgreSQL schema (or an SQLite file with `--sqlite`) with `--rows` outbox rows
and their jobs, spread over 20 targets and 200 rules (a tenth failed, a tenth pending, the rest
submitted, each with one timeline row), and
`--collections` open collections, then times each path `--repeat` times through a real
server on 127.0.0.1 and prints the median and the slowest in milliseconds. Run from the
repository root:

    .venv/bin/python bench/web.py [--rows 100000] [--collections 200] [--repeat 10] [--sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.metrics import Metrics
from switchboard.store.engine import make_engine
from switchboard.store.job_tables import job_updates, jobs
from switchboard.store.migrate import upgrade
from switchboard.store.progress_statements import collections
from switchboard.store.sql import SqlStore
from switchboard.store.statements import submissions
from switchboard.web.gauges import StateGauges
from switchboard.web.live import StaticLive
from switchboard.web.server import WebServer
from switchboard.web.site import Site
from switchboard.web.tracked_jobs import TrackedJobs
from switchboard.web.views import Views

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PATHS = ("/", "/api/jobs?limit=100", "/api/jobs?status=failed", "/api/collections", "/metrics")


def fill(store: SqlStore, rows: int, open_collections: int) -> None:
    now = datetime.now(UTC)
    statuses = ["sent"] * 8 + ["failed", "pending"]
    batch: list[dict[str, object]] = []
    tracked: list[dict[str, object]] = []
    timeline: list[dict[str, object]] = []
    with store.engine.begin() as connection:
        for n in range(rows):
            status = statuses[n % len(statuses)]
            batch.append(
                {
                    "job_id": uuid.uuid4().hex,
                    "rule": f"rule-{n % 200}",
                    "extractor": f"target-{n % 20}",
                    "via": "amqp",
                    "resource_type": "dataset",
                    "resource_id": f"dataset-{n % 5000}",
                    "parameters": {},
                    "event_message_id": f"m{n}",
                    "body": {"datasetId": f"dataset-{n % 5000}"},
                    "properties": {},
                    "options": {},
                    "status": status,
                    "attempts": 1,
                    "next_attempt_at": now,
                    "last_error": "refused" if status == "failed" else None,
                    "created_at": now - timedelta(seconds=rows - n),
                    "sent_at": now if status == "sent" else None,
                }
            )
            row = batch[-1]
            job_status = {"sent": "submitted"}.get(status, status)
            tracked.append(
                {
                    "job_id": row["job_id"],
                    "rule": row["rule"],
                    "target": row["extractor"],
                    "via": "amqp",
                    "resource_type": "dataset",
                    "resource_id": row["resource_id"],
                    "dataset_id": row["resource_id"],
                    "status": job_status,
                    "created_at": row["created_at"],
                    "updated_at": now,
                }
            )
            if status != "pending":
                timeline.append(
                    {
                        "update_key": uuid.uuid4().hex,
                        "job_id": row["job_id"],
                        "at": now,
                        "received_at": now,
                        "status": job_status,
                        "source": "relay",
                    }
                )
            if len(batch) == 5000:
                flush(connection, batch, tracked, timeline)
        flush(connection, batch, tracked, timeline)
        connection.execute(
            insert(collections),
            [
                {
                    "rule": "mosaic",
                    "key": f"day/{n}",
                    "generation": 1,
                    "state": "open",
                    "member_count": n,
                    "expected": 9000,
                    "opened_at": now - timedelta(hours=n),
                    "last_member_at": now,
                }
                for n in range(open_collections)
            ],
        )


def flush(connection: Any, *tables: list[dict[str, object]]) -> None:
    for table, rows in zip((submissions, jobs, job_updates), tables, strict=True):
        if rows:
            connection.execute(insert(table), rows)
            rows.clear()


def measure(base: str, repeat: int) -> dict[str, tuple[float, float]]:
    figures = {}
    for path in PATHS:
        took = []
        for _ in range(repeat):
            started = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=120) as answer:
                answer.read()
            took.append((time.perf_counter() - started) * 1000)
        figures[path] = (statistics.median(took), max(took))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url, schema = PG_URL, f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
                connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            upgrade(url, schema)
            store = SqlStore(url, schema=schema)
            fill(store, args.rows, args.collections)
            metrics = Metrics(process=True)
            reads = make_engine(url, schema, reads_only=True)
            metrics.registry.register(StateGauges(reads))
            views = Views(
                StaticLive("bench"), TrackedJobs(), url, None, clock=lambda: datetime.now(UTC)
            )
            server = WebServer(Site(views, reads, (metrics.registry,)), "127.0.0.1", 0)
            server.start()
            try:
                figures = measure(server.url, args.repeat)
            finally:
                server.close()
                reads.dispose()
                store.close()
        finally:
            if schema is not None:
                with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
                    connection.execute(
                        sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
                    )
    where = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{where}, {args.rows} outbox rows, {args.collections} open collections:")
    for path, (median, slowest) in figures.items():
        print(f"  {path:<26} median {median:8.1f} ms   slowest {slowest:8.1f} ms")


if __name__ == "__main__":
    main()
