"""Benchmark (not a test): after a `kill -9`, how long the outbox rows the dead daemon had
claimed wait before a relay claims them again, for this tree and (with `--tree`) another.

Run from the repository root, e.g. against a `git worktree` of the previous commit:

    .venv/bin/python bench/recovery.py --tree main=/tmp/main-worktree [--replicas 1] [--kills 4]

Every event submits `via: ray` to an endpoint that accepts connections and never answers, so
the relay always holds claimed rows: one in a hung send, the others waiting their turn. The
run publishes `--events` events, waits until their rows are claimed, then `--kills` times:
notes the claimed rows and their tokens, kills one daemon with SIGKILL and starts another
(as systemd would; with `--replicas 2` the survivor may notice first; the rows the survivor
itself holds are among those noted, so each row's time is printed too), and times until every
noted row carries another token (claimed again) or settled, both from the kill and from the
moment the new daemon consumed (the restart's own time, imports and rules, excluded). Queues
live in a vhost of their own, the database is fresh; both are removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika
import pika.exceptions
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos import INPUT, ReclaimWatch, Supervisor, _wait_for_consumers, own_vhost
from pipeline import PROPERTIES, Tree, fresh_database
from workload import Workload, encode

from tests.silent_server import SilentServer

RULES = """\
- name: recovery-hung-ray
  when: {file.id: {exists: true}}
  submit: {extractor: recovery-hung, via: ray, entrypoint: "python -c pass"}
"""


def claimed(db: psycopg.Connection) -> int:
    return db.execute(
        "SELECT count(*) FROM submissions WHERE status = 'pending' AND claim_token IS NOT NULL"
    ).fetchone()[0]


def wait_until(condition, timeout_s: float, what: str) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def run(tree: Tree, args: argparse.Namespace) -> list[tuple[float | None, float]]:
    name = f"sbrecover-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    (folder / "rules.yaml").write_text(RULES)
    try:
        with (
            own_vhost(name, args.amqp) as uri,
            fresh_database(args.pg, name, tree=tree) as url,
            contextlib.closing(SilentServer()) as hung,
        ):
            env = dict(
                os.environ,
                RABBITMQ_URI=uri,
                SWITCHBOARD_DATABASE_URL=url,
                SWITCHBOARD_RULES=str(folder / "rules.yaml"),
                SWITCHBOARD_QUEUE=INPUT,
                RAY_ADDRESS=hung.url,
                **tree.env(),
            )
            supervisor = Supervisor(env, folder, args.replicas)
            try:
                return _kill_and_time(args, uri, url, supervisor)
            finally:
                supervisor.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def consumers(uri: str) -> int:
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection = pika.BlockingConnection(pika.URLParameters(uri))
        try:
            return connection.channel().queue_declare(INPUT, passive=True).method.consumer_count
        finally:
            connection.close()
    return 0


def _kill_and_time(
    args, uri: str, url: str, supervisor: Supervisor
) -> list[tuple[float | None, float]]:
    _wait_for_consumers(uri, args.replicas, supervisor)
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    for body in Workload("recovery").bodies("recovery", args.events):
        channel.basic_publish("", INPUT, encode(body, time.time()), PROPERTIES)
    connection.close()
    pg_url = url.replace("postgresql+psycopg://", "postgresql://")
    rng = random.Random(args.seed)
    delays: list[tuple[float | None, float]] = []
    with psycopg.connect(pg_url, autocommit=True) as db:
        for kill in range(args.kills):
            wait_until(lambda: claimed(db) >= 2, 120, "claimed rows")
            time.sleep(rng.uniform(0.5, 3.0))  # anywhere in a send, not right after a claim
            watch = ReclaimWatch(pg_url, limit_s=args.limit_s)
            supervisor.kill_one(rng)
            watch.start()
            wait_until(lambda: consumers(uri) < args.replicas, 30, "the broker to see the kill")
            wait_until(lambda: consumers(uri) >= args.replicas, 120, "the restarted daemon")
            restarted_s = time.monotonic() - watch.killed_at
            delays.append((watch.result(), restarted_s))
            print(
                f"  kill {kill + 1}: {len(watch.claimed)} claimed rows, claimed again after"
                f" {watch.recovered_s} s (each: {sorted(watch.per_row_s.values())});"
                f" the new daemon consumed after {restarted_s:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit-s", type=float, default=90.0, help="give up timing a kill")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()
    trees = [Tree(n, Path(p).resolve()) for n, _, p in (t.partition("=") for t in args.tree)]
    trees.append(Tree("this", None))
    results = {}
    for tree in trees:
        print(f"--- {tree.name}, {args.replicas} daemon(s)", file=sys.stderr, flush=True)
        results[tree.name] = run(tree, args)
    print(f"kill -9 -> rows it had claimed claimed again, {args.replicas} daemon(s):")
    for name, delays in results.items():
        timed = [d for d, _ in delays if d is not None]
        after = [d - r for d, r in delays if d is not None]  # negative: before the restart
        nan = float("nan")
        kill_median = statistics.median(timed) if timed else nan
        after_median = statistics.median(after) if after else nan
        print(
            f"  {name}: after the kill median {kill_median:.2f} s"
            f" (max {max(timed, default=nan):.2f}); after the new daemon consumed median"
            f" {after_median:.2f} s (max {max(after, default=nan):.2f})"
            f" over {len(timed)} kills; (reclaimed, restarted) s: {delays}"
        )


if __name__ == "__main__":
    main()
