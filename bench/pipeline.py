"""Benchmark (not a test): `switchboard run` end to end on the real broker and database,
against the raw pika ceiling of the same machine.

Needs RabbitMQ (127.0.0.1:5672, guest) and PostgreSQL (127.0.0.1:5432, trust auth). Run from
the repository root:

    .venv/bin/python bench/pipeline.py [--events 20000] [--rules 100] [--prefetch 256]
                                       [--batch-size 200] [--paced-events 3000] [--raw-mode both]
                                       [--python-every 20] [--status-traffic] [--keep]

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
   backlog (under saturation, latency is mostly time spent queued behind other events).

5. With `--status-traffic`, a second saturated stream after the first in which a simulated
   extractor answers every submission with pyclowder's start + done updates to its reply_to
   (`status_traffic.py`); that stream ends once Clowder's reply queue has every update. The
   report adds its events/s and the ratio with/without (target >= 0.8).

Prints a table and the ratio pipeline/raw (target >= 0.5). Throughput depends on the machine;
the benchmark, the daemon, RabbitMQ and PostgreSQL share its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
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
    archive_compare: int = 0  # pairs of archive off/on runs after the main one (0: none)
    status_traffic: bool = False


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


def run_raw(options: Options, run: str, mode: str, workload: Workload) -> Phase:
    source, sink = f"{run}.raw-{mode}.in", f"{run}.raw-{mode}.out"
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
        ]
    )
    try:
        wait_for(lambda: publisher.depth(source)[1] > 0, 30, "the raw consumer", worker)
        warmup = Phase("warmup", options.warmup_events)
        publisher.publish(workload.bodies("warmup", warmup.events), warmup)
        wait_for(lambda: collector.count() >= warmup.events, options.timeout_s, "raw warm-up")
        start = collector.count()
        phase = Phase("measure", options.events)
        publisher.publish(workload.bodies("measure", phase.events), phase)
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
def fresh_database(pg_conninfo: str, run: str, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database, migrated to head; its SQLAlchemy URL. Dropped afterwards
    unless `keep`."""
    name = f"bench_{run.replace('-', '_')}"
    with psycopg.connect(pg_conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(pg_conninfo)
    url = (
        f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
        f"{info.get('port', 5432)}/{name}"
    )
    try:
        upgrade(url)
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

    def matching_events(self, phase: str) -> int:
        return self._connection.execute(
            "SELECT count(DISTINCT event_message_id) FROM submissions"
            " WHERE event_message_id LIKE %s",
            (f"%-{phase}-%",),
        ).fetchone()[0]

    def close(self) -> None:
        self._connection.close()


def run_pipeline(options: Options, run: str, workload: Workload, folder: Path) -> dict:
    queue = f"{run}.in"
    targets = target_queues(run)
    yaml_count, python_count = write_rules(folder, options.rules, run, options.python_every)
    own_queues = [queue, f"error.{queue}", f"retry.{queue}", *targets]
    if options.status_traffic:
        publisher = Publisher(options.amqp_uri, queue, status_traffic.event_properties(run))
        publisher.declare([queue, *targets])
        collector = status_traffic.SimulatedExtractor(options.amqp_uri, targets, run, options.keep)
    else:
        publisher = Publisher(options.amqp_uri, queue)
        publisher.declare([queue, *targets])
        collector = Collector(options.amqp_uri, targets)
    log_path = folder / "daemon.log"
    report: dict = {"yaml_rules": yaml_count, "python_rules": python_count}
    try:
        with fresh_database(options.pg_conninfo, run, options.keep) as url:
            env = dict(
                os.environ,
                RABBITMQ_URI=options.amqp_uri,
                SWITCHBOARD_DATABASE_URL=url,
                SWITCHBOARD_RULES=str(folder),
                SWITCHBOARD_QUEUE=queue,
                SWITCHBOARD_PREFETCH=str(options.prefetch),
                SWITCHBOARD_BATCH_SIZE=str(options.batch_size),
            )
            command = [str(Path(sys.executable).with_name("switchboard")), "run"]
            with open(log_path, "wb") as log:
                daemon = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            outbox = Outbox(url)
            try:
                report.update(_drive(options, workload, publisher, collector, outbox, daemon))
            finally:
                report["exit_code"] = stop_process(daemon)
                outbox.close()
    except Exception:
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


def _drive(options, workload, publisher, collector, outbox, daemon) -> dict:
    queue = publisher.queue
    state: dict[str, str] = {}
    wait_for(lambda: publisher.depth(queue)[1] > 0, 60, "the daemon to consume", daemon)

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

    def stream(phase: Phase, rate: float | None = None) -> None:
        start = collector.count()
        publisher.publish(workload.bodies(phase.name, phase.events), phase, rate=rate)
        settle(phase, start)

    stream(Phase("warmup", options.warmup_events))
    measured = Phase("measure", options.events)
    with_status, tally, cpu = None, None, None
    if options.status_traffic:
        cpu = status_traffic.CpuMeter(daemon.pid, outbox.database)
        with cpu.phase(measured.name):
            stream(measured)
        with_status = Phase("status", options.events)
        collector.answering = True
        with cpu.phase(with_status.name):
            stream(with_status)
            tally = status_traffic.wait_until_clowder_has_every_update(
                collector, with_status, options.timeout_s
            )
        collector.answering = False
    else:
        stream(measured)
    paced = Phase("paced", options.paced_events)
    if paced.events:
        stream(paced, rate=measured.rate / 2)
    return {
        "measure": measured,
        "paced": paced if paced.events else None,
        "status": with_status,
        "status_tally": tally,
        "status_cpu": cpu,
        "matching": outbox.matching_events("measure"),
        "failed": outbox.failed(),
        "dead_lettered": publisher.depth(f"error.{queue}")[0],
    }


# --- the report ----------------------------------------------------------------------------------


def print_report(options: Options, raw: dict[str, Phase], report: dict) -> None:
    measured: Phase = report["measure"]
    paced: Phase | None = report["paced"]
    print()
    print(
        f"{options.events:,} events, {options.rules} rules ({report['yaml_rules']} YAML, "
        f"{report['python_rules']} Python), prefetch {options.prefetch}, "
        f"batch size {options.batch_size}, {os.cpu_count()} CPUs"
    )
    print(
        f"{report['matching']:,} events ({100 * report['matching'] / measured.events:.1f} %) "
        f"queued {measured.outputs:,} new submissions; failed {report['failed']}, "
        f"dead-lettered {report['dead_lettered']}, duplicate job ids {measured.duplicates}, "
        f"daemon exit code {report['exit_code']}"
    )
    print()
    header = f"{'run':<38} {'events/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'outputs':>8}"
    print(header)
    print("-" * len(header))
    rows = [(f"raw pika ({mode})", phase) for mode, phase in raw.items()]
    rows.append(("switchboard run (saturated)", measured))
    if report.get("status") is not None:
        rows.append(("switchboard run (saturated, status)", report["status"]))
    if paced is not None:
        offered = paced.events / max(1e-9, paced.last_published - paced.first_published)
        rows.append((f"switchboard run (paced, {offered:,.0f}/s offered)", paced))
    for label, phase in rows:
        print(
            f"{label:<38} {phase.rate:>9,.0f} {phase.percentile_ms(0.5):>9,.1f} "
            f"{phase.percentile_ms(0.99):>9,.1f} {phase.outputs:>8,}"
        )
    print()
    for mode, phase in raw.items():
        ratio = measured.rate / phase.rate
        print(f"ratio pipeline / raw ({mode}): {ratio:.2f}  (target >= 0.5)")
    if report.get("status") is not None:
        print(
            "\n".join(
                status_traffic.report(
                    measured, report["status"], report["status_tally"], report["status_cpu"]
                )
            )
        )
    print("saturated latency includes the time events wait queued behind the backlog")


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
    parser.add_argument(
        "--status-traffic",
        action="store_true",
        help="also measure a stream whose submissions are answered by start + done updates",
    )
    parser.add_argument("--keep", action="store_true", help="keep queues, database and files")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--archive-compare",
        type=int,
        default=0,
        metavar="N",
        help="then N runs each with the event archive off and on (bench/archive_overhead.py)",
    )
    args = parser.parse_args()
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
        archive_compare=args.archive_compare,
        status_traffic=args.status_traffic,
    )


def main() -> None:
    options = parse_options()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so queues and database are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = f"sbbench-{uuid.uuid4().hex[:8]}"
    workload = Workload(run)
    modes = {"both": ["confirm", "batch"], "none": []}.get(options.raw_mode, [options.raw_mode])
    raw = {}
    for mode in modes:
        raw[mode] = run_raw(options, run, mode, workload)
        print(f"raw pika ({mode}): {raw[mode].rate:,.0f} msg/s", flush=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    try:
        report = run_pipeline(options, run, workload, folder)
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print_report(options, raw, report)
    if options.archive_compare:
        from archive_overhead import compare

        compare(options, run, workload, run_pipeline, report, rounds=options.archive_compare)


if __name__ == "__main__":
    main()
