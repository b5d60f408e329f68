"""Benchmark (not a test): the daemon's peak memory when huge bodies arrive at once.

It starts `switchboard run` as a child process on the real RabbitMQ and PostgreSQL (a private
schema and queues, removed afterwards), waits until it consumes, then publishes `--count`
bodies of `--size-mb` MB each (valid JSON events, far over SWITCHBOARD_MAX_EVENT_BYTES) and
`--good` ordinary file events behind them, all while the daemon is stopped (SIGSTOP), so it
finds the burst waiting when it continues. When every big body is in `error.<queue>` and every
good event's submission is in the extractor's queue it reports the daemon's resident memory
before the burst (VmRSS) and its peak (VmHWM from /proc/<pid>/status).

Run: python bench/memory.py [--count 60] [--size-mb 8] [--good 5] [--env NAME=VALUE]...
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon_bench import bench_daemon, broker, memory_mb  # bench/ is on sys.path as a script

from tests.integration.clowder_events import RULES_YAML, encoded, file_added, properties


def depth(queue: str) -> int:
    with broker() as channel:
        try:
            return channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0


def consumers(queue: str) -> int:
    with broker() as channel:
        try:
            return channel.queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0


def big_body(n: int, size_bytes: int) -> bytes:
    """A well-formed file event padded to `size_bytes` (so only its size is wrong)."""
    body = file_added(10_000 + n)
    body["msgid"] = f"big-{n}"
    body["padding"] = ""
    pad = size_bytes - len(json.dumps(body).encode())
    body["padding"] = "x" * max(0, pad)
    return json.dumps(body).encode()


def wait(predicate: Any, timeout_s: float, what: str, pid: int) -> None:
    give_up = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > give_up:
            raise TimeoutError(f"timed out waiting for {what}")
        if not Path(f"/proc/{pid}").exists():
            raise RuntimeError(f"the daemon exited while waiting for {what}")
        time.sleep(0.2)


def run(count: int, size_mb: float, good: int, extra_env: dict[str, str]) -> dict[str, float]:
    def rules(extractor: str) -> str:
        return RULES_YAML.format(extractor=extractor, via="amqp")

    with bench_daemon(rules, name="ext", env=extra_env) as daemon:
        queue, extractor = daemon.queue, daemon.extractor
        wait(lambda: consumers(queue) > 0, 120, "the daemon to consume", daemon.process.pid)
        time.sleep(1.0)  # let start-up settle before the baseline
        before_mb = memory_mb(daemon.process.pid, "VmRSS")
        size_bytes = int(size_mb * 1024 * 1024)
        # Paused while the burst is published, the daemon then finds it all waiting, as after
        # a slow batch or a restart: the broker pushes up to SWITCHBOARD_PREFETCH at once.
        daemon.process.send_signal(signal.SIGSTOP)
        with broker() as channel:
            for n in range(count):
                channel.basic_publish("", queue, big_body(n, size_bytes))
            for n in range(good):
                channel.basic_publish("", queue, encoded(n), pika.BasicProperties(**properties(n)))
        daemon.process.send_signal(signal.SIGCONT)
        started = time.monotonic()
        wait(
            lambda: depth(f"error.{queue}") >= count and depth(extractor) >= good,
            600,
            f"{count} dead letters and {good} submissions",
            daemon.process.pid,
        )
        return {
            "before_mb": before_mb,
            "peak_mb": memory_mb(daemon.process.pid, "VmHWM"),
            "seconds": time.monotonic() - started,
            "dead_letters": depth(f"error.{queue}"),
            "submitted": depth(extractor),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=60, help="how many big bodies")
    parser.add_argument("--size-mb", type=float, default=8.0, help="the size of each big body")
    parser.add_argument("--good", type=int, default=5, help="ordinary events behind them")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the daemon (repeatable)"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    f = run(args.count, args.size_mb, args.good, extra)
    print(
        f"{args.count} x {args.size_mb:g} MB bodies + {args.good} good events: "
        f"daemon RSS {f['before_mb']:.0f} MB before, peak {f['peak_mb']:.0f} MB; "
        f"{f['dead_letters']} dead-lettered, {f['submitted']} submitted in {f['seconds']:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
