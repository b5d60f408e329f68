"""Benchmark (not a test): how fast one `switchboard run` drains a queue filled before it starts,
for A/B comparisons of source trees on a noisy machine.

Needs RabbitMQ (127.0.0.1:5672, guest) and PostgreSQL (127.0.0.1:5432, trust auth). Run from
the repository root:

    .venv/bin/python bench/backlog.py [--events 12000] [--rounds 6]
                                      [--tree base=/path/to/worktree] [--skip-this]

Each run publishes `--warmup-events` then `--events` bodies (`workload.py`, the rules of
`bench/pipeline.py`) to a fresh queue, migrates a fresh database, then starts the daemon. The
rate is `--events` over the time between the daemon's batch-log lines that closed the warm-up
and the last event; its CPU is read from /proc when it is done. There is no load generator
running beside the daemon, so the figure is the daemon's own capacity on this machine.

Rounds alternate the trees' order, and the report gives each tree's median and, per round,
its rate divided by the first tree's: on a machine whose speed drifts between minutes (a
shared host), the paired ratios of one run say more than medians of separate runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika
from pipeline import PROPERTIES, Tree, delete_queues, fresh_database
from workload import Workload, encode, target_queues, write_rules

SWITCHBOARD = Path(sys.executable).with_name("switchboard")


def drain(options: argparse.Namespace, tree: Tree) -> tuple[float, float]:
    """One run of `tree`: (events/s over the measured events, daemon CPU seconds)."""
    run = f"bl-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    write_rules(folder, options.rules, run, options.python_every)
    queue, targets = f"{run}-in", target_queues(run)
    workload = Workload(run)
    bodies = workload.bodies("warmup", options.warmup_events)
    bodies += workload.bodies("measure", options.events)
    connection = pika.BlockingConnection(pika.URLParameters(options.amqp_uri))
    channel = connection.channel()
    for name in (queue, *targets):
        channel.queue_declare(name, durable=True)
    for body in bodies:
        channel.basic_publish("", queue, encode(body, time.time()), PROPERTIES)
    channel.queue_declare(queue, passive=True)  # a round trip: every body is in the queue
    connection.close()
    log = folder / "daemon.log"
    try:
        with fresh_database(options.pg, run, False, tree) as url:
            env = dict(
                os.environ,
                RABBITMQ_URI=options.amqp_uri,
                SWITCHBOARD_DATABASE_URL=url,
                SWITCHBOARD_RULES=str(folder),
                SWITCHBOARD_QUEUE=queue,
                SWITCHBOARD_PREFETCH=str(options.prefetch),
                SWITCHBOARD_BATCH_SIZE=str(options.batch_size),
                **tree.env(),
            )
            with open(log, "wb") as out:
                command = [str(SWITCHBOARD), "run"]
                daemon = subprocess.Popen(command, env=env, stdout=out, stderr=out)
            try:
                wait_until_drained(log, len(bodies), daemon, options.timeout_s)
                cpu_s = cpu_seconds(daemon.pid)
            finally:
                daemon.terminate()
                daemon.wait(30)
    finally:
        delete_queues(options.amqp_uri, [queue, f"error.{queue}", f"retry.{queue}", *targets])
        delete_queues(options.amqp_uri, [f"{queue}.status"])
    return measured_rate(log, options.warmup_events, options.events), cpu_s


def batch_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if '"msg": "batch"' in line]


def wait_until_drained(log: Path, total: int, daemon: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(line["events"] for line in batch_lines(log)) < total:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained within {timeout_s} s; see {log}")
        time.sleep(0.25)


def measured_rate(log: Path, warmup: int, events: int) -> float:
    """Events/s from the batch that completed the warm-up to the last batch."""
    seen, started, ended = 0, None, None
    for line in batch_lines(log):
        at = datetime.datetime.fromisoformat(line["ts"]).timestamp()
        seen += line["events"]
        if started is None and seen >= warmup:
            started = at
        ended = at
    assert started is not None and ended is not None and ended > started
    return events / (ended - started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=12_000)
    parser.add_argument("--warmup-events", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--python-every", type=int, default=20)
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--skip-this", action="store_true", help="only the --tree trees")
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    options = parser.parse_args()
    trees = [Tree(name, Path(path)) for name, path in (t.split("=", 1) for t in options.tree)]
    if not options.skip_this:
        trees.append(Tree("this", None))
    rates: dict[str, list[float]] = {tree.name: [] for tree in trees}
    cpus: dict[str, list[float]] = {tree.name: [] for tree in trees}
    for number in range(options.rounds):
        for tree in trees if number % 2 == 0 else trees[::-1]:
            rate, cpu_s = drain(options, tree)
            rates[tree.name].append(rate)
            cpus[tree.name].append(cpu_s)
            print(f"round {number + 1} {tree.name}: {rate:,.0f} events/s, CPU {cpu_s:.1f} s")
    print(f"\n{options.events:,} events after {options.warmup_events:,} of warm-up, medians:")
    first = trees[0].name
    for tree in trees:
        line = f"  {tree.name}: {statistics.median(rates[tree.name]):,.0f} events/s"
        line += f", daemon CPU {statistics.median(cpus[tree.name]):.1f} s"
        if tree.name != first:
            paired = [b / a for a, b in zip(rates[first], rates[tree.name], strict=True)]
            line += f", paired ratio to {first} {statistics.median(paired):.3f}"
            line += f" {[round(r, 2) for r in paired]}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
