"""Benchmark (not a test): a collection's firing latency and the daemon's memory as it grows.

For each size N (default 9,000 and 90,000) it starts `switchboard run` as a child process on
the real RabbitMQ and PostgreSQL (a private schema and queues, removed afterwards), with one
collect rule `until: {count: N}` and `manifest_file: true`, and publishes N file events, each
in its own dataset (as the TERRA-REF GeoTIFFs were). It reports:

- warm latency: the first N-1 members are published and processed, then the last one is
  published; the time from that publish to the firing's message in the target queue
  (target < 1 s);
- burst latency (`--burst`): all N published at once, from the last publish to the firing
  (this includes working off the backlog, so it measures throughput more than latency);
- the daemon's peak resident memory (VmHWM) at the end, for each N (target: flat; members
  are never all in memory, except the manifest file's sorted paths while it is written).

Run: python bench/collect.py [--sizes 9000 90000] [--burst]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pika
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon_bench import PG, bench_daemon, broker, memory_mb  # bench/ is on sys.path as a script

from tests.integration.clowder_events import file_added, properties

RULE = """\
- name: mosaic
  when:
    file.name: {{suffix: "_left.tif"}}
  collect:
    key: "fullfield/bench"
    member: "{{file.id}}"
    data: {{path: "/data/{{dataset.id}}/{{file.name}}"}}
    until: {{count: {count}}}
    manifest_file: true
  submit: {{extractor: {extractor}, resource: dataset}}
"""


def publish(channel: Any, queue: str, numbers: range) -> None:
    """File events `numbers`, each the only file of its own dataset."""
    for n in numbers:
        body = file_added(n, dataset=f"dataset-{n:07d}")
        body["msgid"] = f"bench-{n}"
        channel.basic_publish(
            "", queue, json.dumps(body).encode(), pika.BasicProperties(**properties(n))
        )


def processed(schema: str) -> int:
    with psycopg.connect(PG, autocommit=True) as connection:
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        try:
            return connection.execute("SELECT count(*) FROM processed_messages").fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0


def wait_for_message(channel: Any, queue: str, timeout_s: float) -> float:
    """Poll the target queue; the monotonic time the firing was found."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        method, _props, _body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return time.monotonic()
        channel.connection.sleep(0.002)  # keeps the connection's heartbeats going
    raise TimeoutError(f"no firing in {queue} within {timeout_s} s")


def run(count: int, burst: bool) -> dict[str, float]:
    def rules(extractor: str) -> str:
        return RULE.format(count=count, extractor=extractor)

    with bench_daemon(rules, name="mosaic") as daemon:
        queue, extractor, schema = daemon.queue, daemon.extractor, daemon.schema
        started = time.monotonic()
        if not burst:
            with broker() as channel:
                publish(channel, queue, range(count - 1))
            while processed(schema) < count - 1:
                time.sleep(0.2)
        with broker() as channel:
            last = range(count - 1, count) if not burst else range(count)
            publish(channel, queue, last)  # on the channel that then waits
            published = time.monotonic()
            fired = wait_for_message(channel, extractor, timeout_s=max(120.0, count / 50))
        figures = {
            "members": count,
            "latency_s": fired - published,
            "total_s": fired - started,
            "peak_rss_mb": memory_mb(daemon.process.pid, "VmHWM"),
        }
        manifest = next((daemon.tmp / "manifests").glob("*.json"), None)
        figures["manifest_paths"] = len(json.loads(manifest.read_text())) if manifest else 0
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9_000, 90_000])
    parser.add_argument("--burst", action="store_true", help="publish all members at once")
    args = parser.parse_args()
    mode = "burst" if args.burst else "warm"
    for size in args.sizes:
        f = run(size, args.burst)
        print(
            f"{f['members']:>7} members ({mode}): last publish -> firing {f['latency_s']:.3f} s, "
            f"whole run {f['total_s']:.1f} s, daemon peak RSS {f['peak_rss_mb']:.1f} MB, "
            f"manifest file {f['manifest_paths']} paths",
            flush=True,
        )


if __name__ == "__main__":
    main()
