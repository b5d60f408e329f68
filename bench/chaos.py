"""Soak benchmark (not a test): N events through `switchboard run` under K faults, counting what
was lost, duplicated, fired twice or dead-lettered and how long the outbox took to drain."""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import PROPERTIES, Tree, fresh_database, stop_process
from workload import Workload, encode

from tests.silent_server import SilentServer

FAULT_KINDS = ("kill", "broker", "database")
LOCAL = {"127.0.0.1", "localhost", "::1"}
INPUT = "chaos.in"
PER_EVENT = ("chaos.every", "chaos.images", "chaos.archive")  # extractor queues, one per target
MOSAIC = "chaos.mosaic"  # the collection's target (fieldmosaic-like)
MEMBERS = 8  # `until: {count: 8}`: the workload sends 8 files per dataset
RULES = f"""\
- name: chaos-every-file
  when: {{file.id: {{exists: true}}}}
  submit: {{extractor: {PER_EVENT[0]}, resource: file}}
- name: chaos-images
  when: {{file.name: {{suffix: ".tif"}}}}
  submit:
    - {{extractor: {PER_EVENT[1]}, resource: file}}
    - {{extractor: {PER_EVENT[2]}, resource: file}}
- name: chaos-mosaic
  when: {{file.id: {{exists: true}}}}
  collect: {{key: "mosaic/{{dataset.id}}", member: "{{file.id}}", until: {{count: {MEMBERS}}}}}
  submit: {{extractor: {MOSAIC}, resource: dataset}}
"""
HUNG_RULE = """\
- name: chaos-hung-ray
  when: {{file.id: {{in: {ids}}}}}
  submit: {{extractor: chaos-hung, via: ray, entrypoint: "python -c pass"}}
"""


@dataclass(frozen=True)
class Options:
    events: int
    faults: int
    kinds: tuple[str, ...]
    seed: int
    rate: float
    hung_rows: int
    replicas: int
    lease_s: float | None
    settle_s: float
    timeout_s: float
    amqp: str
    pg_conninfo: str
    as_json: bool
    trees: tuple[Tree, ...] = (Tree("this", None),)


# --- the surroundings: own vhost, hung endpoint, daemons ----------------------------------------


@contextlib.contextmanager
def own_vhost(name: str, amqp: str) -> Iterator[str]:
    """A RabbitMQ vhost of our own (so a purge cuts only our connections); its AMQP URI."""
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
        )
        yield f"{amqp.rstrip('/')}/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)


class Supervisor:
    """Runs `replicas` daemons, restarts any that exit, and kills one with SIGKILL on demand."""

    def __init__(self, env: dict[str, str], folder: Path, replicas: int) -> None:
        self.env, self.folder = env, folder
        self.starts = 0
        self.unexpected_exits: list[int] = []
        self.daemons = [self._start() for _ in range(replicas)]

    def _start(self) -> subprocess.Popen:
        command = [str(Path(sys.executable).with_name("switchboard")), "run", "--migrate"]
        self.starts += 1
        with open(self.folder / f"daemon-{self.starts}.log", "wb") as log:
            return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill_one(self, rng: random.Random) -> None:
        index = rng.randrange(len(self.daemons))
        self.daemons[index].send_signal(signal.SIGKILL)
        self.daemons[index].wait()
        self.daemons[index] = self._start()

    def check(self) -> None:
        """Restart daemons that exited on their own (as systemd would), counting them."""
        for index, daemon in enumerate(self.daemons):
            if daemon.poll() is not None:
                self.unexpected_exits.append(daemon.returncode)
                if len(self.unexpected_exits) > 20:
                    raise RuntimeError(f"the daemon keeps exiting; see {self.folder}")
                self.daemons[index] = self._start()

    def stop(self) -> list[int]:
        return [stop_process(daemon) for daemon in self.daemons]


# --- traffic --------------------------------------------------------------------------------------


class Publisher(threading.Thread):
    """Publishes the bodies at `rate` per second with publisher confirms, reconnecting after a
    purge and publishing again what was not confirmed (a duplicate the daemon must absorb)."""

    def __init__(self, uri: str, bodies: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.uri, self.bodies, self.rate = uri, bodies, rate
        self.published = 0
        self.republished = 0
        self.started_at = self.finished_at = 0.0  # epoch seconds, as the daemon's time stamps
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _publish(self) -> None:
        started, self.started_at = time.monotonic(), time.time()
        connection: Any = None
        while self.published < len(self.bodies):
            try:
                if connection is None or connection.is_closed:
                    connection = pika.BlockingConnection(pika.URLParameters(self.uri))
                    channel = connection.channel()
                    channel.confirm_delivery()
                wait_s = started + self.published / self.rate - time.monotonic()
                if wait_s > 0:
                    connection.sleep(wait_s)
                body = encode(self.bodies[self.published], time.time())
                channel.basic_publish("", INPUT, body, PROPERTIES, mandatory=True)
                self.published += 1
            except pika.exceptions.AMQPError:
                self.republished += 1
                with contextlib.suppress(Exception):
                    connection.close()
                connection = None
                time.sleep(0.2)
        self.finished_at = time.time()
        connection.close()


def depths(uri: str, queues: list[str]) -> list[int]:
    """Ready messages per queue, on a short-lived connection (a purge may cut any other)."""
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        return [channel.queue_declare(q, passive=True).method.message_count for q in queues]
    finally:
        connection.close()


def _wait_for_consumers(uri: str, replicas: int, supervisor: Supervisor) -> None:
    """Until every daemon consumes (a fault on a daemon still starting would hit nothing)."""
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        supervisor.check()
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection = pika.BlockingConnection(pika.URLParameters(uri))
            try:
                declared = connection.channel().queue_declare(INPUT, passive=True)
            finally:
                connection.close()
            if declared.method.consumer_count >= replicas:
                return
        time.sleep(0.1)
    raise RuntimeError("the daemons did not start consuming within 60 s")


def take_all(uri: str, queue: str) -> list[tuple[dict[str, Any], Any]]:
    """Every message of `queue`, consumed: (headers, JSON body or raw bytes)."""
    taken: list[tuple[dict[str, Any], Any]] = []
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        for method, props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=1.0):
            if method is None:
                break
            with contextlib.suppress(ValueError):
                body = json.loads(body)
            taken.append((props.headers or {}, body))
        channel.cancel()
    finally:
        connection.close()
    return taken


# --- faults ---------------------------------------------------------------------------------------


def schedule(options: Options, rng: random.Random) -> list[tuple[float, str]]:
    """K (seconds after the first publish, kind) pairs spread over the publishing window."""
    window_s = options.events / options.rate
    kinds = [options.kinds[k % len(options.kinds)] for k in range(options.faults)]
    rng.shuffle(kinds)
    times = sorted(rng.uniform(0.05, 0.95) * window_s for _ in kinds)
    return list(zip(times, kinds, strict=True))


def terminate_backends(pg_conninfo: str, application_name: str) -> int:
    with psycopg.connect(pg_conninfo, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


# --- the run --------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What happened while the run went on (the rest is read from queues and the database)."""

    faults: collections.Counter = field(default_factory=collections.Counter)
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (s after start, kind)
    backends_terminated: int = 0
    # per kill: a watcher timing until the rows claimed just before it were claimed again
    kills: list[ReclaimWatch] = field(default_factory=list)
    timed_out: bool = False
    stalled: bool = False
    wall_s: float = 0.0


def run(options: Options, tree: Tree) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    name, app_name = f"sbchaos-{tag}", f"sbchaos-{tag}"
    rng = random.Random(options.seed)
    bodies = Workload(name, seed=options.seed).bodies("chaos", options.events)
    hung_ids = [b["id"] for b in rng.sample(bodies, min(options.hung_rows, len(bodies)))]
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    rules = RULES + (HUNG_RULE.format(ids=json.dumps(hung_ids)) if hung_ids else "")
    (folder / "rules.yaml").write_text(rules)
    try:
        with (
            own_vhost(name, options.amqp) as uri,
            fresh_database(options.pg_conninfo, name, tree=tree) as url,
            contextlib.closing(SilentServer()) as hung,
        ):
            env = dict(
                os.environ,
                RABBITMQ_URI=uri,
                SWITCHBOARD_DATABASE_URL=f"{url}?application_name={app_name}",
                SWITCHBOARD_RULES=str(folder / "rules.yaml"),
                SWITCHBOARD_QUEUE=INPUT,
                **tree.env(),
            )
            if hung_ids:
                env["RAY_ADDRESS"] = hung.url
            if options.lease_s is not None:
                env["SWITCHBOARD_RELAY_LEASE_S"] = str(options.lease_s)
            pg_url = url.replace("postgresql+psycopg://", "postgresql://")
            return _drive(options, rng, bodies, uri, pg_url, env, app_name, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _drive(
    options: Options,
    rng: random.Random,
    bodies: list[dict[str, Any]],
    uri: str,
    pg_url: str,
    env: dict[str, str],
    app_name: str,
    folder: Path,
) -> dict[str, Any]:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    for queue in (INPUT, *PER_EVENT, MOSAIC):  # durable, as pyclowder declares them
        connection.channel().queue_declare(queue, durable=True)
    connection.close()
    supervisor = Supervisor(env, folder, options.replicas)
    record = RunRecord()
    started = time.monotonic()
    deadline = started + options.timeout_s
    publisher = Publisher(uri, bodies, options.rate)
    with psycopg.connect(pg_url, autocommit=True) as db:
        try:
            publisher.start()
            for at_s, kind in schedule(options, rng):
                while time.monotonic() < started + at_s:
                    supervisor.check()
                    time.sleep(0.1)
                _wait_for_consumers(uri, options.replicas, supervisor)
                watch = ReclaimWatch(pg_url) if kind == "kill" else None
                _inject(kind, options, rng, uri, app_name, supervisor, record)
                if watch is not None:
                    watch.start()
                    record.kills.append(watch)
                record.timeline.append((round(time.monotonic() - started, 1), kind))
                _say(f"{record.timeline[-1][0]:6.1f} s fault: {kind}")
            _settle(options, uri, db, publisher, supervisor, record, deadline)
        finally:
            record.wall_s = time.monotonic() - started
            codes = supervisor.stop()
        if publisher.error is not None:
            raise RuntimeError(f"the publisher failed: {publisher.error!r}")
        received = {queue: take_all(uri, queue) for queue in (*PER_EVENT, MOSAIC)}
        dead = take_all(uri, f"error.{INPUT}")
        report = _tally(db, bodies, received, dead)
        report["kill_recovery_s"] = [watch.result() for watch in record.kills]
        last_commit_at = report.pop("last_commit_at")
    report.update(
        events=len(bodies),
        republished=publisher.republished,
        faults=dict(record.faults),
        fault_timeline=record.timeline,
        backends_terminated=record.backends_terminated,
        hung_sink=bool(options.hung_rows),
        daemon_starts=supervisor.starts,
        unexpected_exits=supervisor.unexpected_exits,
        final_exit_codes=codes,
        timed_out=record.timed_out,
        stalled=record.stalled,
        wall_s=round(record.wall_s, 1),
        publish_s=round(publisher.finished_at - publisher.started_at, 1),
        intake_s=round(last_commit_at - publisher.started_at, 1),
    )
    return report


class ReclaimWatch(threading.Thread):
    """Notes the outbox rows claimed right before a kill (with their claim tokens), then
    polls until each was claimed again by someone else or settled: the seconds from the kill
    until the last of them was, or None if none was claimed (nothing to recover)."""

    def __init__(self, pg_url: str, limit_s: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.pg_url, self.limit_s = pg_url, limit_s
        with psycopg.connect(pg_url, autocommit=True) as db:
            self.claimed = dict(
                db.execute(
                    "SELECT job_id, claim_token FROM submissions"
                    " WHERE status = 'pending' AND claim_token IS NOT NULL"
                ).fetchall()
            )
        self.killed_at = time.monotonic()
        self.recovered_s: float | None = None
        self.per_row_s: dict[str, float] = {}  # when each row was claimed again or settled

    def run(self) -> None:
        if not self.claimed:
            return
        waiting = dict(self.claimed)
        with psycopg.connect(self.pg_url, autocommit=True) as db:
            while waiting and time.monotonic() - self.killed_at < self.limit_s:
                rows = db.execute(
                    "SELECT job_id, status, claim_token, attempts FROM submissions"
                    " WHERE job_id = ANY(%s)",
                    (list(waiting),),
                ).fetchall()
                for job_id, status, token, _attempts in rows:
                    if status != "pending" or token != waiting[job_id]:
                        del waiting[job_id]
                        self.per_row_s[job_id] = round(time.monotonic() - self.killed_at, 2)
                if waiting:
                    time.sleep(0.1)
        self.recovered_s = round(time.monotonic() - self.killed_at, 2)

    def result(self) -> float | None:
        self.join(self.limit_s + 5)
        return self.recovered_s


def _inject(
    kind: str,
    options: Options,
    rng: random.Random,
    uri: str,
    app_name: str,
    supervisor: Supervisor,
    record: RunRecord,
) -> None:
    if kind == "kill":
        supervisor.kill_one(rng)
    elif kind == "broker":
        vhost = uri.rsplit("/", 1)[1]
        command = ["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "chaos"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    else:
        record.backends_terminated += terminate_backends(options.pg_conninfo, app_name)
    record.faults[kind] += 1


def _settle(
    options: Options,
    uri: str,
    db: psycopg.Connection,
    publisher: Publisher,
    supervisor: Supervisor,
    record: RunRecord,
    deadline: float,
) -> None:
    """Wait until every event is committed (or dead-lettered) and no AMQP row is pending; give
    up after `settle_s` without progress or at the deadline."""
    last_change, last_state, last_said = time.monotonic(), None, 0.0
    while True:
        supervisor.check()
        committed, pending = db.execute(
            "SELECT (SELECT count(*) FROM processed_messages),"
            " (SELECT count(*) FROM submissions WHERE status = 'pending' AND via = 'amqp')"
        ).fetchone()
        try:
            ready, delayed, dead = depths(uri, [INPUT, f"retry.{INPUT}", f"error.{INPUT}"])
        except pika.exceptions.AMQPError:
            ready = delayed = dead = -1
        state = (publisher.published, committed, pending, ready, delayed, dead)
        now = time.monotonic()
        if state != last_state:
            last_change, last_state = now, state
        if now - last_said > 5:
            last_said = now
            _say(
                f"published {publisher.published}/{len(publisher.bodies)} committed {committed}"
                f" pending {pending} input {ready} dead {dead}"
            )
        if not publisher.is_alive() and ready == 0 and delayed == 0:
            if committed + dead >= len(publisher.bodies) and pending == 0:
                time.sleep(1.0)  # a last look: nothing else arrives
                return
            if now - last_change > options.settle_s:
                record.stalled = True
                return
        if now > deadline:
            record.timed_out = True
            return
        time.sleep(0.5)


def _tally(
    db: psycopg.Connection,
    bodies: list[dict[str, Any]],
    received: dict[str, list[tuple[dict[str, Any], Any]]],
    dead: list[tuple[dict[str, Any], Any]],
) -> dict[str, Any]:
    """The figures: from what reached the queues against what the database says happened."""
    ours = {body["msgid"] for body in bodies}
    committed = {row[0] for row in db.execute("SELECT message_id FROM processed_messages")}
    dead_ids = {body.get("msgid") for _, body in dead if isinstance(body, dict)}
    reasons = collections.Counter(str(h.get("x-switchboard-error", "?"))[:80] for h, _ in dead)
    delivered = [body for messages in received.values() for _, body in messages]
    per_job = collections.Counter(body["job_id"] for body in delivered)
    outbox = dict(
        ((via, status), count)
        for via, status, count in db.execute(
            "SELECT via, status, count(*) FROM submissions GROUP BY via, status"
        )
    )
    sent = {row[0] for row in db.execute("SELECT job_id FROM submissions WHERE status = 'sent'")}
    firings = collections.defaultdict(set)
    for _, body in received[MOSAIC]:
        firings[body["parameters"]["collection"]].add(body["job_id"])
    messages_per_key = collections.Counter(
        b["parameters"]["collection"] for _, b in received[MOSAIC]
    )
    datasets = collections.Counter(body["datasetId"] for body in bodies)
    firings_in_db = dict(db.execute("SELECT key, count(*) FROM collection_firings GROUP BY key"))
    last_commit, last_send = db.execute(
        "SELECT (SELECT max(processed_at) FROM processed_messages),"
        " (SELECT max(sent_at) FROM submissions WHERE via = 'amqp')"
    ).fetchone()
    drain_s: float | None = None  # not drained: AMQP rows still pending
    if not outbox.get(("amqp", "pending")):
        drain_s = (last_send - last_commit).total_seconds() if last_commit and last_send else 0.0
        drain_s = round(max(0.0, drain_s), 2)
    return {
        "events_committed": len(ours & committed),
        "events_lost": len(ours - committed - dead_ids),
        "dead_letters": len(dead),
        "dead_letter_reasons": dict(reasons),
        "outbox_rows": {f"{via}/{status}": n for (via, status), n in sorted(outbox.items())},
        "messages_delivered": len(delivered),
        "distinct_job_ids": len(per_job),
        "duplicate_messages": len(delivered) - len(per_job),
        "job_ids_delivered_twice_or_more": sum(1 for n in per_job.values() if n > 1),
        "sent_but_missing": len(sent - set(per_job) - _ray_jobs(db)),
        "collections_expected": sum(1 for n in datasets.values() if n >= MEMBERS),
        "collections_fired_in_db": sum(firings_in_db.values()),
        "collections_fired_twice_in_db": sum(1 for n in firings_in_db.values() if n > 1),
        "collections_delivered": len(firings),
        "double_firings": sum(1 for n in messages_per_key.values() if n > 1),
        "refirings_with_new_job_id": sum(1 for ids in firings.values() if len(ids) > 1),
        "drain_s": drain_s,
        "last_commit_at": last_commit.timestamp() if last_commit else 0.0,
    }


def _ray_jobs(db: psycopg.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT job_id FROM submissions WHERE via = 'ray'")}


# --- output ---------------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def print_table(report: dict[str, Any]) -> None:
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(report["faults"].items())) or "none"
    rows = [
        ("events published", f"{report['events']:,} ({report['republished']} republished)"),
        ("faults", f"{faults}; hung sink {'on' if report['hung_sink'] else 'off'}"),
        (
            "daemon starts / unexpected exits",
            f"{report['daemon_starts']} / "
            f"{len(report['unexpected_exits'])} {report['unexpected_exits'] or ''}",
        ),
        ("events committed", f"{report['events_committed']:,}"),
        ("events lost", report["events_lost"]),
        (
            "messages delivered / distinct job ids",
            f"{report['messages_delivered']:,} / {report['distinct_job_ids']:,}",
        ),
        ("duplicate messages", report["duplicate_messages"]),
        ("job ids delivered more than once", report["job_ids_delivered_twice_or_more"]),
        ("sent but never delivered", report["sent_but_missing"]),
        (
            "collections expected / fired / delivered",
            f"{report['collections_expected']} / "
            f"{report['collections_fired_in_db']} / {report['collections_delivered']}",
        ),
        (
            "double firings",
            f"{report['double_firings']} ({report['refirings_with_new_job_id']} with a new job id,"
            f" {report['collections_fired_twice_in_db']} fired twice in the database)",
        ),
        ("dead letters", f"{report['dead_letters']} {report['dead_letter_reasons'] or ''}"),
        ("outbox rows", ", ".join(f"{k} {v}" for k, v in report["outbox_rows"].items())),
        (
            "first publish -> last commit",
            f"{report['intake_s']:.1f} s (publishing took {report['publish_s']:.1f} s)",
        ),
        ("outbox drain after last commit", _seconds(report["drain_s"])),
        (
            "kill -> its claimed rows claimed again",
            _recovery(report["kill_recovery_s"]),
        ),
        (
            "wall time",
            f"{report['wall_s']:.1f} s"
            + (" (TIMED OUT)" if report["timed_out"] else "")
            + (" (STALLED)" if report["stalled"] else ""),
        ),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _recovery(delays: list[float | None]) -> str:
    """Seconds from each kill until the rows claimed at that moment were claimed again."""
    timed = sorted(d for d in delays if d is not None)
    if not timed:
        return f"no kill found claimed rows ({len(delays)} kills)"
    median = timed[len(timed) // 2]
    return (
        f"median {median:.2f} s, max {timed[-1]:.2f} s over the {len(timed)} of"
        f" {len(delays)} kills that found claimed rows {delays}"
    )


def _seconds(drain_s: float | None) -> str:
    return "not drained (AMQP rows still pending)" if drain_s is None else f"{drain_s:.2f} s"


def parse_options() -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.replace("\n", " "),
        epilog="Run from the repository root, e.g. .venv/bin/python bench/chaos.py --events 2000"
        " --faults 4; everything it creates (vhost, database, files) is removed at the end.",
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--faults", type=int, default=8)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS), help="of kill,broker,database")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=400.0, help="events published per second")
    parser.add_argument(
        "--hung-sink",
        type=int,
        default=0,
        metavar="ROWS",
        help="ROWS events also go via: ray to an endpoint that never answers",
    )
    parser.add_argument("--replicas", type=int, default=1, help="daemons consuming at once")
    parser.add_argument("--lease-s", type=float, help="SWITCHBOARD_RELAY_LEASE_S of the daemons")
    parser.add_argument("--settle-s", type=float, default=120.0, help="give up without progress")
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="first run the daemons from this source tree (e.g. a git worktree of main), then"
        " this one, with the same seed: the figures side by side",
    )
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(FAULT_KINDS):
        parser.error(f"--kinds: choose from {', '.join(FAULT_KINDS)}")
    if args.events < 1 or args.faults < 0 or args.rate <= 0 or args.hung_sink < 0:
        parser.error("--events and --rate must be positive, --faults and --hung-sink >= 0")
    hosts = {urllib.parse.urlsplit(args.amqp).hostname, conninfo_to_dict(args.pg).get("host")}
    if not hosts <= LOCAL:
        parser.error("--amqp and --pg must name 127.0.0.1: this tool kills connections")
    trees = []
    for spec in args.tree:
        name, _, path = spec.partition("=")
        if not name or not (Path(path) / "switchboard").is_dir():
            parser.error(f"--tree {spec!r}: want NAME=PATH, PATH a source tree of switchboard")
        trees.append(Tree(name, Path(path).resolve()))
    trees.append(Tree("this", None))
    return Options(
        trees=tuple(trees),
        events=args.events,
        faults=args.faults,
        kinds=kinds,
        seed=args.seed,
        rate=args.rate,
        hung_rows=args.hung_sink,
        replicas=max(1, args.replicas),
        lease_s=args.lease_s,
        settle_s=args.settle_s,
        timeout_s=args.timeout_s,
        amqp=args.amqp,
        pg_conninfo=args.pg,
        as_json=args.json,
    )


def main() -> None:
    options = parse_options()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: vhost and database go
    reports = {}
    for tree in options.trees:
        _say(f"--- daemons from {tree.name}")
        reports[tree.name] = run(options, tree)
    if options.as_json:
        print(json.dumps(reports, indent=2, sort_keys=True))
        return
    for name, report in reports.items():
        print(f"--- {name}")
        print_table(report)
    if len(reports) > 1:
        print("--- side by side")
        for name, r in reports.items():
            print(
                f"{name}: drain after last commit {_seconds(r['drain_s'])}; kill -> rows reclaimed:"
                f" {_recovery(r['kill_recovery_s'])}; duplicate messages"
                f" {r['duplicate_messages']}, events lost {r['events_lost']}"
            )


if __name__ == "__main__":
    main()
