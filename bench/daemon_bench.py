"""One `switchboard run` subprocess on a queue and PostgreSQL schema of its own, for benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import psycopg
from psycopg import sql

URI = "amqp://guest:guest@127.0.0.1:5672/%2f"
PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
SWITCHBOARD = Path(sys.executable).with_name("switchboard")


@dataclass(frozen=True)
class BenchDaemon:
    """The running daemon and the names it was given."""

    process: subprocess.Popen[bytes]
    queue: str
    extractor: str
    schema: str
    tmp: Path


@contextmanager
def broker() -> Iterator[Any]:
    """A short-lived channel (a long idle one would miss its heartbeats and be dropped)."""
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    try:
        yield connection.channel()
    finally:
        connection.close()


def memory_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def bench_daemon(
    rules: Callable[[str], str], *, name: str, env: Mapping[str, str] | None = None
) -> Iterator[BenchDaemon]:
    """Start `switchboard run --migrate` with `rules(extractor)` as its rule file; on exit stop
    it and delete its queues, schema and files. Its log is `<tmp>/daemon.log`."""
    tag = uuid.uuid4().hex[:8]
    schema, queue, extractor = f"bench_{tag}", f"bench-{tag}", f"bench.{tag}.{name}"
    with psycopg.connect(PG, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    (tmp / "rules.yaml").write_text(rules(extractor))
    daemon_env = dict(
        os.environ,
        RABBITMQ_URI=URI,
        SWITCHBOARD_DATABASE_URL=(
            f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        ),
        SWITCHBOARD_RULES=str(tmp / "rules.yaml"),
        SWITCHBOARD_QUEUE=queue,
        SWITCHBOARD_MANIFEST_DIR=str(tmp / "manifests"),
        **(env or {}),
    )
    with broker() as channel:
        channel.queue_declare(queue, durable=True)
        channel.queue_declare(extractor, durable=True)
    log = (tmp / "daemon.log").open("wb")
    process = subprocess.Popen(
        [str(SWITCHBOARD), "run", "--migrate"], env=daemon_env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield BenchDaemon(process, queue, extractor, schema, tmp)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        with broker() as channel:
            for queue_name in (queue, extractor, f"error.{queue}", f"retry.{queue}"):
                channel.queue_delete(queue_name)
        with psycopg.connect(PG, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
