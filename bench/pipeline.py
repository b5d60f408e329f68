"""Benchmark (not a test): `switchboard run` end to end on the real broker and database,
against the raw pika ceiling of the same machine.

Needs RabbitMQ (127.0.0.1:5672, guest) and PostgreSQL (127.0.0.1:5432, trust auth). Run from
the repository root:

    .venv/bin/python bench/pipeline.py [--events 20000] [--rules 100] [--prefetch 256]
                                       [--batch-size 200] [--paced-events 3000] [--raw-mode both]
                                       [--python-every 20] [--replicas 1,2,3]
                                       [--tree main=/path/to/main-worktree] [--repeat 3]
                                       [--profile DIR [--profile-idle]] [--status-traffic]
                                       [--archive-compare N] [--keep]

`--tree NAME=PATH` (repeatable) runs the daemon from another source tree (a `git worktree` of
the previous commit) as well as this one ("this"), back to back in the same run, so the figures
compare commits on the same machine at the same moment; `--repeat N` runs the whole round N
times (each tree and replica count, each after a raw ceiling of its own) and prints medians
(alternate rounds run the trees in the opposite order). `--replicas 1,2,3`
runs 1, 2 and 3 daemons on one queue and one database and checks, by counting, that no event
and no submission was lost or sent twice. `--profile DIR` runs every daemon under `py-spy
record` and writes one collapsed-stack file per daemon plus a top-frames summary: of the
thread holding the GIL (CPU), or with `--profile-idle` of every thread's wall time (waits on
PostgreSQL and the broker included).

What it does, with everything named after one run id and removed afterwards (queues, the
database, the temporary folder; `--keep` keeps them for a look):

1. Generates `--rules` mixed rules (YAML with every kind of operator, one in twenty in Python)
   and Clowder v1 `dataset.file.added` bodies (see `workload.py`; ~17 % of events match).
2. Raw ceiling: starts `rawpika.py` (consume, publish one message with publisher confirms or
   one AMQP transaction per batch, ack; no rules, no database), publishes `--events` messages
   as fast as it can and times them through.
3. Pipeline: creates a fresh PostgreSQL database, migrates it, starts `switchboard run` as a
   subprocess on a fresh input queue and, after a warm-up, publishes the same number of events
   as fast as it can. A consumer on the extractor queues reads every submission back; the body
   carries the publish time, so each submission's latency is consume time - publish time.
   Events/s = events / (last event committed or submission consumed - first event published).
4. Paced: `--paced-events` more events at half the measured rate, for latency without a
   backlog (under saturation, latency is mostly time spent queued behind other events), then
   the same through raw pika at the same rate: the latency floor of the machine as loaded.
5. With `--status-traffic`, a second saturated stream right after the first in which a
   simulated extractor answers every submission with pyclowder's start + done updates to its
   reply_to (`status_traffic.py`); that stream ends once Clowder's reply queue has every
   update. The report adds its events/s, the ratio with/without (issue 9 asks >= 0.8) and the
   CPU per 1000 events of both.
6. With `--archive-compare N`, after the last round, N pairs of runs with the event archive off
   and on (`archive_overhead.py`; this tree, or the first `--tree` with `--skip-this`, at the
   first `--replicas` count): events/s of both, the ratio on / off (issue 11 asks >= 0.9) and
   the archive's bytes per event in PostgreSQL.

Prints a table and the ratio pipeline/raw, each pipeline run against the raw run just before
it (issue 14 asks >= 0.6 against `batch`, and p99 < 100 ms in the paced run), and the CPU the
daemons and their PostgreSQL backends spent per event (a figure a busy machine disturbs less
than throughput). Throughput depends on the machine; the benchmark, the daemon, RabbitMQ and
PostgreSQL share its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pika.exceptions
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import status_traffic
from workload import Workload, encode, target_queues, write_rules

from switchboard.store.migrate import upgrade

HERE = Path(__file__).resolve().parent
PROPERTIES = pika.BasicProperties(
    content_type="application/json",
    delivery_mode=2,
    reply_to="clowder.bench",
    correlation_id="bench",
)


@dataclass
class Options:
    events: int
    rules: int
    python_every: int
    prefetch: int
    batch_size: int
    paced_events: int
    warmup_events: int
    raw_mode: str
    amqp_uri: str
    pg_conninfo: str
    keep: bool
    timeout_s: float
    trees: list[Tree]
    replicas: list[int]
    repeat: int
    profile: Path | None
    profile_idle: bool = False  # py-spy samples waiting threads too (wall time, not CPU)
    status_traffic: bool = False  # a second saturated stream answered with status updates
    archive_compare: int = 0  # pairs of archive off/on runs after the last round (0: none)


@dataclass(frozen=True)
class Tree:
    """A source tree the daemon runs from: `path` None is this one."""

    name: str
    path: Path | None

    def env(self) -> dict[str, str]:
        """PYTHONPATH first: the tree's `switchboard` package shadows the installed (editable)
        one, which the venv's meta-path finder would otherwise import."""
        if self.path is None:
            return {}
        return {"PYTHONPATH": os.pathsep.join([str(self.path), os.environ.get("PYTHONPATH", "")])}


@dataclass
class Phase:
    """One timed stream of events and what came out of it."""

    name: str
    events: int
    first_published: float = 0.0
    last_published: float = 0.0
    finished: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    outputs: int = 0
    duplicates: int = 0
    cpu_s: float = 0.0  # CPU the daemons and their PostgreSQL backends used meanwhile

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.cpu_s / max(1, self.events)

    @property
    def rate(self) -> float:
        return self.events / max(1e-9, self.finished - self.first_published)

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- broker helpers ------------------------------------------------------------------------------


class Collector:
    """Reads every message from the given queues on its own connection and thread."""

    def __init__(self, uri: str, queues: list[str]) -> None:
        self.received: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(uri, queues), daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"collector did not start: {self._error}")

    def _run(self, uri: str, queues: list[str]) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(uri))
            channel = connection.channel()
            for queue in queues:
                channel.basic_consume(queue, self._on_message, auto_ack=True)
        except BaseException as exc:  # reported to the main thread by __init__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.05)
        except BaseException as exc:  # reported by count()
            self._error = exc
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _on_message(self, _channel, _method, _properties, body: bytes) -> None:
        self.received.append((time.time(), body))

    def count(self) -> int:
        if self._error is not None:
            raise RuntimeError(f"the collector failed: {self._error!r}")
        return len(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Publisher:
    """Publishes event bodies to one queue, stamping each with its publish time."""

    def __init__(self, uri: str, queue: str, properties: pika.BasicProperties = PROPERTIES) -> None:
        self.queue = queue
        self._properties = properties
        self._connection = pika.BlockingConnection(pika.URLParameters(uri))
        self._channel = self._connection.channel()

    def publish(self, bodies: list[dict], phase: Phase, rate: float | None = None) -> None:
        """As fast as possible, or `rate` events/s in 10 ms ticks; returns once all arrived."""
        started = time.time()
        phase.first_published = started
        for k, body in enumerate(bodies):
            if rate is not None and k % 8 == 0:
                wait_s = started + k / rate - time.time()
                if wait_s > 0:
                    self._connection.sleep(wait_s)
            self._channel.basic_publish("", self.queue, encode(body, time.time()), self._properties)
        # a synchronous round trip on the same channel: the broker has routed all of the above
        self._channel.queue_declare(self.queue, passive=True)
        phase.last_published = time.time()

    def depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of `queue`."""
        declared = self._channel.queue_declare(queue, passive=True)
        return declared.method.message_count, declared.method.consumer_count

    def declare(self, queues: list[str]) -> None:
        for queue in queues:
            self._channel.queue_declare(queue, durable=True)  # as pyclowder declares them

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()


def delete_queues(uri: str, queues: list[str]) -> None:
    """Delete `queues` on a connection of its own: the run's may be dead by now (another test
    on the broker may have closed every connection); a failure is reported, not raised."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(uri))
    except pika.exceptions.AMQPError as exc:
        print(f"could not delete queues {queues}: {exc!r}", file=sys.stderr)
        return
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def wait_for(condition, timeout_s: float, what: str, process: subprocess.Popen | None = None):
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (all its threads) still running, from /proc
    (so only for processes on this machine: PostgreSQL must be local)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def with_children(pids: list[int]) -> list[int]:
    """`pids` and their child processes (the daemons' isolated Python rule workers), from /proc."""
    wanted = set(pids)
    found = list(pids)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) in wanted:
                found.append(int(entry.name))
    return found


def stop_process(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def read_back(collector: Collector, start: int, phases: dict[str, Phase]) -> None:
    """Attribute everything collected since `start` to its phase, with its latency."""
    seen: set[str] = set()
    for consumed_at, raw in collector.received[start:]:
        body = json.loads(raw)
        phase = phases.get(body.get("bench_phase"))
        if phase is None:
            continue
        phase.outputs += 1
        key = body.get("job_id") or body.get("msgid")
        if key in seen:
            phase.duplicates += 1
        seen.add(key)
        phase.latencies_s.append(consumed_at - body["bench_published_at"])
        phase.finished = max(phase.finished, consumed_at)


# --- the raw ceiling -----------------------------------------------------------------------------


def run_raw(
    options: Options, run: str, mode: str, workload: Workload, rate: float | None = None
) -> Phase:
    """The raw ceiling: `--events` as fast as possible, or with `rate` the latency floor of
    `--paced-events` at that rate (then batches take what has arrived, as the daemon's do)."""
    tag = "paced" if rate is not None else "sat"
    source, sink = f"{run}.raw-{mode}-{tag}.in", f"{run}.raw-{mode}-{tag}.out"
    publisher = Publisher(options.amqp_uri, source)
    publisher.declare([source, sink])
    collector = Collector(options.amqp_uri, [sink])
    worker = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "rawpika.py"),
            f"--uri={options.amqp_uri}",
            f"--input={source}",
            f"--output={sink}",
            f"--mode={mode}",
            f"--prefetch={options.prefetch}",
            f"--batch-size={options.batch_size}",
            f"--batch-wait-s={0.0 if rate is not None else 0.05}",
        ]
    )
    try:
        wait_for(lambda: publisher.depth(source)[1] > 0, 30, "the raw consumer", worker)
        warmup = Phase("warmup", options.warmup_events)
        publisher.publish(workload.bodies("warmup", warmup.events), warmup)
        wait_for(lambda: collector.count() >= warmup.events, options.timeout_s, "raw warm-up")
        start = collector.count()
        phase = Phase("measure", options.paced_events if rate is not None else options.events)
        publisher.publish(workload.bodies("measure", phase.events), phase, rate=rate)
        wait_for(
            lambda: collector.count() >= start + phase.events,
            options.timeout_s,
            "the raw run",
            worker,
        )
        read_back(collector, start, {"measure": phase})
        return phase
    finally:
        stop_process(worker)
        collector.close()
        if not options.keep:
            delete_queues(options.amqp_uri, [source, sink])
        publisher.close()


# --- the pipeline --------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(
    pg_conninfo: str, run: str, keep: bool = False, tree: Tree | None = None
) -> Iterator[str]:
    """A new PostgreSQL database, migrated to the head of `tree` (this one by default: its
    daemon refuses a database migrated further than it knows); its SQLAlchemy URL. Dropped
    afterwards unless `keep`."""
    name = f"bench_{run.replace('-', '_')}"
    with psycopg.connect(pg_conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(pg_conninfo)
    url = (
        f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
        f"{info.get('port', 5432)}/{name}"
    )
    try:
        if tree is None or tree.path is None:
            upgrade(url)
        else:
            command = [str(Path(sys.executable).with_name("switchboard")), "db", "upgrade"]
            env = dict(os.environ, **tree.env())
            subprocess.run([*command, "--database", url], env=env, check=True)
        yield url
    finally:
        if not keep:
            with psycopg.connect(pg_conninfo, autocommit=True) as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


class Outbox:
    """Reads the daemon's progress from its database."""

    def __init__(self, url: str) -> None:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        self._connection = psycopg.connect(conninfo, autocommit=True)
        self.database = self._connection.info.dbname

    def progress(self, phase: str) -> tuple[int, int, int, float]:
        """(events committed, submissions, submissions no longer pending, last commit time)."""
        pattern = f"%-{phase}-%"
        committed, last = self._connection.execute(
            "SELECT count(*), extract(epoch FROM max(processed_at)) FROM processed_messages"
            " WHERE message_id LIKE %s",
            (pattern,),
        ).fetchone()
        submitted, settled = self._connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'pending') FROM submissions"
            " WHERE event_message_id LIKE %s",
            (pattern,),
        ).fetchone()
        return committed, submitted, settled, float(last or 0.0)

    def failed(self) -> int:
        return self._connection.execute(
            "SELECT count(*) FROM submissions WHERE status = 'failed'"
        ).fetchone()[0]

    def backends(self) -> list[int]:
        """Process ids of the other sessions on this database: the daemons' backends."""
        rows = self._connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    def submissions(self, phase: str) -> int:
        return self._connection.execute(
            "SELECT count(*) FROM submissions WHERE event_message_id LIKE %s",
            (f"%-{phase}-%",),
        ).fetchone()[0]

    def matching_events(self, phase: str) -> int:
        return self._connection.execute(
            "SELECT count(DISTINCT event_message_id) FROM submissions"
            " WHERE event_message_id LIKE %s",
            (f"%-{phase}-%",),
        ).fetchone()[0]

    def close(self) -> None:
        self._connection.close()


def run_pipeline(
    options: Options, run: str, workload: Workload, folder: Path, tree: Tree, replicas: int
) -> dict:
    """One pipeline measurement: `replicas` daemons from `tree` on a fresh queue and database."""
    run = f"{run}-{tree.name}-r{replicas}"
    queue = f"{run}.in"
    targets = target_queues(run)
    rules_folder = folder / run
    rules_folder.mkdir()
    yaml_count, python_count = write_rules(rules_folder, options.rules, run, options.python_every)
    # the daemon declares its status queue (`Settings.status_queue_name`) as well
    own_queues = [queue, f"error.{queue}", f"retry.{queue}", f"{queue}.status", *targets]
    collector: Collector | status_traffic.SimulatedExtractor
    if options.status_traffic:
        publisher = Publisher(options.amqp_uri, queue, status_traffic.event_properties(run))
        publisher.declare([queue, *targets])
        collector = status_traffic.SimulatedExtractor(options.amqp_uri, targets, run, options.keep)
    else:
        publisher = Publisher(options.amqp_uri, queue)
        publisher.declare([queue, *targets])
        collector = Collector(options.amqp_uri, targets)
    logs = [rules_folder / f"daemon-{k}.log" for k in range(replicas)]
    report: dict = {"yaml_rules": yaml_count, "python_rules": python_count}
    try:
        with fresh_database(options.pg_conninfo, run, options.keep, tree) as url:
            env = dict(
                os.environ,
                RABBITMQ_URI=options.amqp_uri,
                SWITCHBOARD_DATABASE_URL=url,
                SWITCHBOARD_RULES=str(rules_folder),
                SWITCHBOARD_QUEUE=queue,
                SWITCHBOARD_PREFETCH=str(options.prefetch),
                SWITCHBOARD_BATCH_SIZE=str(options.batch_size),
                **tree.env(),
            )
            daemons = [start_daemon(env, log) for log in logs]
            profilers = [
                start_profiler(
                    daemon, options.profile, f"{tree.name}-r{replicas}-{k}", options.profile_idle
                )
                for k, daemon in enumerate(daemons)
                if options.profile is not None
            ]
            outbox = Outbox(url)
            try:
                report.update(
                    _drive(options, workload, publisher, collector, outbox, daemons, replicas)
                )
            finally:
                report["exit_codes"] = [stop_process(daemon) for daemon in daemons]
                for profiler in profilers:
                    profiler.wait(60)
                outbox.close()
    except Exception:
        for log_path in logs:
            print(f"--- daemon log ({log_path}), last lines:", file=sys.stderr)
            with contextlib.suppress(OSError):
                print("\n".join(log_path.read_text().splitlines()[-20:]), file=sys.stderr)
        raise
    finally:
        collector.close()
        if not options.keep:
            delete_queues(options.amqp_uri, own_queues)
        publisher.close()
    return report


def start_daemon(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("switchboard")), "run"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def start_profiler(
    daemon: subprocess.Popen, profile: Path, name: str, idle: bool = False
) -> subprocess.Popen:
    """`py-spy record` attached to `daemon`: collapsed stacks of the thread holding the GIL
    only (`--gil`), so the shares are of the Python CPU the daemon's one GIL allows, not of
    time spent waiting on sockets; with `idle`, of every thread's wall time instead, waits
    included (`--idle`: where a thread spends its time, not what it costs). It writes
    `profile/name.txt` when the daemon exits."""
    profile.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    out = profile / f"{name}.txt"
    command = [
        spy,
        "record",
        "--format",
        "raw",
        "--rate",
        "200",
        "--nonblocking",
        "--threads",
        "--idle" if idle else "--gil",
    ]
    command += ["--pid", str(daemon.pid), "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _drive(options, workload, publisher, collector, outbox, daemons, replicas) -> dict:
    queue = publisher.queue
    state: dict[str, str] = {}
    daemon = Watched(daemons)
    wait_for(lambda: publisher.depth(queue)[1] >= replicas, 60, "the daemons to consume", daemon)

    def settle(phase: Phase, start: int) -> None:
        def done() -> bool:
            committed, submitted, settled, last = outbox.progress(phase.name)
            state[phase.name] = (
                f"{committed}/{phase.events} events committed, {settled}/{submitted} "
                f"submissions settled, {collector.count() - start} read back"
            )
            if committed < phase.events or settled < submitted:
                return False
            if collector.count() - start < submitted - outbox.failed():
                return False
            phase.finished = max(phase.finished, last)
            return True

        try:
            wait_for(done, options.timeout_s, f"the {phase.name} events to go through", daemon)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} ({state.get(phase.name)})") from None
        read_back(collector, start, {phase.name: phase})

    def measured_pids() -> list[int]:
        return with_children([d.pid for d in daemons]) + outbox.backends()

    def stream(phase: Phase, rate: float | None = None, then=None) -> None:
        """Publish `phase`, wait until it is through (and for `then(phase)`), CPU included."""
        start = collector.count()
        before = cpu_seconds(measured_pids())
        publisher.publish(workload.bodies(phase.name, phase.events), phase, rate=rate)
        settle(phase, start)
        if then is not None:
            then(phase)
        after = cpu_seconds(measured_pids())
        phase.cpu_s = sum(after.values()) - sum(before.get(pid, 0.0) for pid in after)

    stream(Phase("warmup", options.warmup_events))
    measured = Phase("measure", options.events)
    stream(measured)
    with_status: Phase | None = None
    tally: status_traffic.Tally | None = None
    if options.status_traffic:
        with_status = Phase("status", options.events)

        def every_update_reached_clowder(phase: Phase) -> None:
            nonlocal tally
            tally = status_traffic.wait_until_clowder_has_every_update(
                collector, phase, options.timeout_s
            )

        collector.answering = True
        stream(with_status, then=every_update_reached_clowder)
        collector.answering = False
    paced = Phase("paced", options.paced_events)
    if paced.events:
        stream(paced, rate=measured.rate / 2)
    return {
        "measure": measured,
        "paced": paced if paced.events else None,
        "status": with_status,
        "status_tally": tally,
        "status_submissions": outbox.submissions("status") if with_status else 0,
        "matching": outbox.matching_events("measure"),
        "failed": outbox.failed(),
        "dead_lettered": publisher.depth(f"error.{queue}")[0],
        "submissions": outbox.submissions("measure"),
    }


class Watched:
    """Several daemons as one for `wait_for`: `poll()` is the first exit code, if any."""

    def __init__(self, daemons: list[subprocess.Popen]) -> None:
        self.daemons = daemons
        self.returncode: int | None = None

    def poll(self) -> int | None:
        for daemon in self.daemons:
            if daemon.poll() is not None:
                self.returncode = daemon.returncode
                return self.returncode
        return None


# --- the report ----------------------------------------------------------------------------------


def print_report(options: Options, runs: list[tuple[str, dict]]) -> None:
    """One round: each (tree, replicas) pipeline run after its raw ceiling."""
    first = runs[0][1]
    print()
    print(
        f"{options.events:,} events, {options.rules} rules ({first['yaml_rules']} YAML, "
        f"{first['python_rules']} Python), prefetch {options.prefetch}, "
        f"batch size {options.batch_size}, {os.cpu_count()} CPUs"
    )
    for label, report in runs:
        measured: Phase = report["measure"]
        lost = report["submissions"] - report["failed"] - measured.outputs
        print(
            f"{label}: {report['matching']:,} events "
            f"({100 * report['matching'] / measured.events:.1f} %) queued "
            f"{report['submissions']:,} submissions, {measured.outputs:,} read back "
            f"(lost {lost}, sent twice {measured.duplicates}); failed {report['failed']}, "
            f"dead-lettered {report['dead_lettered']}, exit codes {report['exit_codes']}"
        )
        with_status: Phase | None = report.get("status")
        if with_status is not None:
            print(
                f"{label} with status traffic: {report['status_submissions']:,} submissions, "
                f"{with_status.outputs:,} read back (sent twice {with_status.duplicates})"
            )
    print()
    header = (
        f"{'run':<52} {'events/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'outputs':>8} {'CPU ms/ev':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for label, report in runs:
        rows += [(f"raw pika ({mode}), before {label}", p) for mode, p in report["raw"].items()]
        rows.append((f"{label} (saturated)", report["measure"]))
        if report.get("status") is not None:
            rows.append((f"{label} (saturated, status traffic)", report["status"]))
        paced: Phase | None = report["paced"]
        if paced is not None:
            offered = paced.events / max(1e-9, paced.last_published - paced.first_published)
            rows.append((f"{label} (paced, {offered:,.0f}/s offered)", paced))
        if report.get("raw_paced") is not None:
            rows.append(("raw pika at the same rate (latency floor)", report["raw_paced"]))
    for label, phase in rows:
        print(
            f"{label:<52} {phase.rate:>9,.0f} {phase.percentile_ms(0.5):>9,.1f} "
            f"{phase.percentile_ms(0.99):>9,.1f} {phase.outputs:>8,} "
            + (f"{phase.cpu_ms_per_event:>9.2f}" if phase.cpu_s else f"{'':>9}")
        )
    print()
    for label, report in runs:
        for mode, phase in report["raw"].items():
            ratio = report["measure"].rate / phase.rate
            print(f"ratio {label} / raw ({mode}) just before it: {ratio:.2f}")
    for label, report in runs:
        if report.get("status") is not None:
            lines = status_traffic.report(
                report["measure"], report["status"], report["status_tally"]
            )
            print("\n".join(f"{label}: {line}" for line in lines))
    print("saturated latency includes the time events wait queued behind the backlog", flush=True)


def figures(label: str, report: dict) -> dict[str, float]:
    """The figures of one run that `print_medians` summarises."""
    measured: Phase = report["measure"]
    paced: Phase | None = report["paced"]
    out = {"events/s": measured.rate, "CPU ms/event": measured.cpu_ms_per_event}
    for mode, phase in report["raw"].items():
        out[f"ratio/{mode}"] = measured.rate / phase.rate
    if paced is not None:
        out["paced p50 ms"] = paced.percentile_ms(0.5)
        out["paced p99 ms"] = paced.percentile_ms(0.99)
    if report.get("raw_paced") is not None:
        out["raw paced p99 ms"] = report["raw_paced"].percentile_ms(0.99)
    with_status: Phase | None = report.get("status")
    if with_status is not None:
        out["status events/s"] = with_status.rate
        out["status ratio"] = with_status.rate / measured.rate
        if with_status.cpu_s and measured.cpu_s:
            out["status CPU ratio"] = measured.cpu_ms_per_event / with_status.cpu_ms_per_event
    out["lost"] = report["submissions"] - report["failed"] - measured.outputs
    out["sent twice"] = measured.duplicates
    return out


def print_medians(rounds: list[dict[str, dict[str, float]]]) -> None:
    """Per run label, the median of each figure over the rounds (and every round's value)."""
    print()
    print(f"medians over {len(rounds)} round(s):")
    for label in rounds[0]:
        values: dict[str, list[float]] = {}
        for result in rounds:
            for key, value in result.get(label, {}).items():
                values.setdefault(key, []).append(value)
        parts = []
        for key, series in values.items():
            each = "/".join(f"{v:,.2f}" if v < 10 else f"{v:,.0f}" for v in series)
            median = statistics.median(series)
            parts.append(f"{key} {median:,.2f}" if median < 10 else f"{key} {median:,.0f}")
            if len(series) > 1:
                parts[-1] += f" [{each}]"
        print(f"  {label}: " + ", ".join(parts))


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument(
        "--python-every", type=int, default=20, help="one rule in N is Python (0: none)"
    )
    parser.add_argument("--paced-events", type=int, default=3_000, help="0 skips the paced run")
    parser.add_argument("--warmup-events", type=int, default=400)
    parser.add_argument("--raw-mode", choices=("confirm", "batch", "both", "none"), default="both")
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--keep", action="store_true", help="keep queues, database and files")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run the daemon from this source tree (e.g. a git worktree of main)",
    )
    parser.add_argument(
        "--skip-this", action="store_true", help="run only the --tree trees, not this one"
    )
    parser.add_argument("--replicas", default="1", help="daemon counts to run, e.g. 1,2,3")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians are printed")
    parser.add_argument("--profile", type=Path, help="py-spy every daemon into this folder")
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="with --profile: sample waiting threads too (where time goes, not CPU)",
    )
    parser.add_argument(
        "--status-traffic",
        action="store_true",
        help="also measure a stream whose submissions are answered by start + done updates",
    )
    parser.add_argument(
        "--archive-compare",
        type=int,
        default=0,
        metavar="N",
        help="then N runs each with the event archive off and on (bench/archive_overhead.py)",
    )
    args = parser.parse_args()
    trees = []
    for spec in args.tree:
        name, _, path = spec.partition("=")
        if not name or not path or not (Path(path) / "switchboard").is_dir():
            parser.error(f"--tree {spec!r}: want NAME=PATH, PATH a source tree of switchboard")
        trees.append(Tree(name, Path(path).resolve()))
    if not args.skip_this:
        trees.append(Tree("this", None))
    if not trees:
        parser.error("--skip-this needs at least one --tree")
    try:
        replicas = [int(n) for n in args.replicas.split(",")]
    except ValueError:
        parser.error(f"--replicas {args.replicas!r}: want counts like 1,2,3")
    if any(n < 1 for n in replicas) or args.repeat < 1:
        parser.error("--replicas and --repeat must be at least 1")
    if args.archive_compare < 0:
        parser.error("--archive-compare must be at least 0")
    return Options(
        events=args.events,
        rules=args.rules,
        python_every=args.python_every,
        prefetch=args.prefetch,
        batch_size=args.batch_size,
        paced_events=args.paced_events,
        warmup_events=args.warmup_events,
        raw_mode=args.raw_mode,
        amqp_uri=args.amqp_uri,
        pg_conninfo=args.pg,
        keep=args.keep,
        timeout_s=args.timeout_s,
        trees=trees,
        replicas=replicas,
        repeat=args.repeat,
        profile=args.profile,
        profile_idle=args.profile_idle,
        status_traffic=args.status_traffic,
        archive_compare=args.archive_compare,
    )


def run_round(
    options: Options, run: str, workload: Workload, reverse: bool = False
) -> list[tuple[str, dict]]:
    """Every (tree, replicas) pipeline run, each right after a raw ceiling of its own (so its
    ratio compares two runs seconds apart on a machine whose load changes); (label, report)
    of each.
    `reverse` runs the trees in the opposite order (alternate rounds: neither tree always
    comes second)."""
    modes = {"both": ["confirm", "batch"], "none": []}.get(options.raw_mode, [options.raw_mode])
    runs: list[tuple[str, dict]] = []
    folder = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    try:
        for replicas in options.replicas:
            for tree in reversed(options.trees) if reverse else options.trees:
                label = f"{tree.name} x{replicas}"
                raw = {}
                for mode in modes:
                    raw[mode] = run_raw(options, f"{run}-{tree.name}-r{replicas}", mode, workload)
                    print(f"raw pika ({mode}): {raw[mode].rate:,.0f} msg/s", flush=True)
                report = run_pipeline(options, run, workload, folder, tree, replicas)
                report["raw"] = raw
                paced = report["paced"]
                if paced is not None and modes:
                    offered = paced.events / max(1e-9, paced.last_published - paced.first_published)
                    name = f"{run}-{tree.name}-r{replicas}"
                    report["raw_paced"] = run_raw(options, name, modes[-1], workload, offered)
                print(f"{label}: {report['measure'].rate:,.0f} events/s", flush=True)
                runs.append((label, report))
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print_report(options, runs)
    return runs


def main() -> None:
    options = parse_options()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so queues and database are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds = []
    for round_number in range(options.repeat):
        run = f"sbbench-{uuid.uuid4().hex[:8]}"
        print(f"--- round {round_number + 1} of {options.repeat} ({run})", flush=True)
        runs = run_round(options, run, Workload(run), reverse=round_number % 2 == 1)
        rounds.append({label: figures(label, report) for label, report in runs})
    print_medians(rounds)
    if options.archive_compare:
        from archive_overhead import compare

        # this tree (else the first --tree) at the first replica count; the last round's run
        # of it, archive on (the default), is the first "on" figure
        tree = next((t for t in options.trees if t.path is None), options.trees[0])
        replicas = options.replicas[0]
        first_on = dict(runs)[f"{tree.name} x{replicas}"]
        rounds_n = options.archive_compare
        compare(options, run, Workload(run), run_pipeline, first_on, rounds_n, tree, replicas)
    if options.profile is not None:
        from profile_summary import summarise

        for path in sorted(options.profile.glob("*.txt")):
            summarise(path)


if __name__ == "__main__":
    main()
