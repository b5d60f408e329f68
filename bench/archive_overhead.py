"""Benchmark (not a test): what the event archive costs; run by `pipeline.py --archive-compare`.

1. events/s of `switchboard run` with the archive off and on (SWITCHBOARD_ARCHIVE), on the
   same workload, alternating off / on for `rounds` pairs after the main run (which has the
   archive on, the default), each from the same source tree with the same number of daemons
   as that run: the ratio on / off (target >= 0.9) of the mean rates.
2. bytes per archived event in PostgreSQL: `events` workload events replayed in-process
   through the daemon's processor into a fresh database; `pg_total_relation_size` of the
   archive tables (with their indexes and TOAST) divided by the events archived.

It can also run alone: `.venv/bin/python bench/archive_overhead.py --bytes-only [--events N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import Workload, write_rules

ARCHIVE_TABLES = ("event_archive", "event_memberships", "rule_versions", "rule_activations")


def bytes_per_event(pg_conninfo: str, run: str, events: int, rules: int) -> dict[str, float]:
    """Replay `events` bodies through `rules` generated rules into a fresh PostgreSQL database
    with the archive on; its tables' size per archived event."""
    import psycopg
    from pipeline import fresh_database

    from switchboard.engine import Engine
    from switchboard.outgoing import extractor_message
    from switchboard.provenance.archive import EventArchive
    from switchboard.provenance.versions import version_of
    from switchboard.replay import replay
    from switchboard.rules import load_rules
    from switchboard.store.sql import SqlStore

    folder = Path(tempfile.mkdtemp(prefix=f"{run}-bytes-"))
    try:
        write_rules(folder, rules, run, 20)
        records = [
            {"properties": {"content_type": "application/json"}, "body": body}
            for body in Workload(run).bodies("measure", events)
        ]
        with fresh_database(pg_conninfo, f"{run}_bytes") as url:
            store = SqlStore(url)
            ruleset = load_rules([str(folder)])
            archive = EventArchive(store)
            archive.activate(version_of([str(folder)], ruleset.names()), "replay")
            engine = Engine(ruleset)
            try:
                replay(records, engine, store, extractor_message, archive=archive)
            finally:
                engine.close()
                store.close()
            conninfo = url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(conninfo, autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE event_archive")
                sizes = {
                    table: connection.execute(
                        "SELECT pg_total_relation_size(%s)", (table,)
                    ).fetchone()[0]
                    for table in ARCHIVE_TABLES
                }
                archived = connection.execute("SELECT count(*) FROM event_archive").fetchone()[0]
                body = connection.execute(
                    "SELECT avg(octet_length(body)), avg(octet_length(outcome::text)) "
                    "FROM event_archive"
                ).fetchone()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = sum(sizes.values())
    return {
        "events": archived,
        "bytes_per_event": total / max(1, archived),
        "archive_table_bytes_per_event": sizes["event_archive"] / max(1, archived),
        "avg_body_bytes": float(body[0] or 0),
        "avg_outcome_bytes": float(body[1] or 0),
    }


def compare(
    options: Any,
    run: str,
    workload: Workload,
    run_pipeline: Callable[..., dict],
    first_on: dict,
    rounds: int = 1,
    tree: Any = None,
    replicas: int = 1,
) -> None:
    """Run the pipeline (pipeline.run_pipeline: `replicas` daemons from `tree`, a
    pipeline.Tree) with the archive off and on (`rounds` pairs), print events/s, the ratio and
    bytes/event. `first_on` is the main run's report (archive on) of that tree and count."""
    # no paced stream, no status traffic, no profiles (they would overwrite the main run's)
    quick = replace(options, paced_events=0, status_traffic=False, profile=None)
    rates: dict[str, list[float]] = {"on": [first_on["measure"].rate], "off": []}
    for k in range(rounds):
        for mode in ("off", "on"):
            folder = Path(tempfile.mkdtemp(prefix=f"{run}-{mode}-"))
            os.environ["SWITCHBOARD_ARCHIVE"] = "true" if mode == "on" else "false"
            try:
                # a run id of its own: queues and database never meet the main run's (--keep)
                name = f"{run}-arch{mode}{k}"
                report = run_pipeline(quick, name, workload, folder, tree, replicas)
            finally:
                os.environ.pop("SWITCHBOARD_ARCHIVE", None)
                shutil.rmtree(folder, ignore_errors=True)
            rates[mode].append(report["measure"].rate)
            print(f"archive {mode}: {report['measure'].rate:,.0f} events/s", flush=True)
    sizes = bytes_per_event(options.pg_conninfo, run, min(options.events, 20_000), options.rules)
    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    print()
    print(f"event archive overhead ({tree.name if tree else 'this'} x{replicas})")
    print(f"  archive off: {', '.join(f'{r:,.0f}' for r in rates['off'])} events/s")
    print(f"  archive on:  {', '.join(f'{r:,.0f}' for r in rates['on'])} events/s")
    print(f"  ratio on / off (means): {on / off:.2f}  (target >= 0.9)")
    print(
        f"  PostgreSQL: {sizes['bytes_per_event']:,.0f} bytes/event in the archive tables "
        f"(event_archive alone {sizes['archive_table_bytes_per_event']:,.0f}; body "
        f"{sizes['avg_body_bytes']:,.0f}, outcome {sizes['avg_outcome_bytes']:,.0f} bytes on "
        f"average; {sizes['events']:,} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes-only", action="store_true", required=True)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()
    import uuid

    run = f"sbarch-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(KeyboardInterrupt):
        print(bytes_per_event(args.pg, run, args.events, args.rules))


if __name__ == "__main__":
    main()
