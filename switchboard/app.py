"""The composition root: the one place where settings, adapters, engine and loop are wired.

Each object is built with what it needs (nothing is wired by setting attributes afterwards);
reloading rules builds a new engine and swaps it in through `Processor.swap_engine`, which
closes the old one.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import interpreter
from .daemon import Backoff, Daemon
from .engine import Engine
from .errors import NotMigrated, Problem, RuleLoadError, StoreError
from .jobs.tracking import with_status_queue
from .jobs.wiring import intake_router, job_gauge, job_poller, relay_sinks
from .metrics import Metrics
from .outgoing import extractor_message
from .ports import JobMembers, Sink
from .processor import Processor
from .provenance.archive import EventArchive, archiving
from .relay import Relay
from .relay_threads import RelayThreads, RelayWorker
from .rules import load_rules
from .rules.legacy import LegacyContext
from .rules.model import RuleSet
from .settings import Settings
from .sink_registry import SINKS
from .store.intake_attempts import SqlCrashGuard
from .store.migrate import ensure_current
from .store.sql import SqlStore
from .throttle import TargetLimit, Throttle
from .timed_calls import timed_names, timed_sinks

log = logging.getLogger(__name__)


@dataclass
class RuleLoader:
    """Loads the configured rules into an engine: at startup, and again on each reload."""

    settings: Settings
    legacy: LegacyContext  # shared by every load, so its file-path cache is too
    between: Callable[[], None] | None = None  # broker heartbeats while isolated rules are killed
    archive: EventArchive | None = None  # provenance: stores the version of each loaded rule set

    def ruleset(self) -> RuleSet:
        """The rules; RuleLoadError if they are broken or submit to a sink that is not set up."""
        ruleset = load_rules(
            self.settings.rules, legacy=self.legacy, python_allowlist=self.settings.python_allowlist
        )
        refuse_rules_without_their_sink(ruleset, self.settings)
        for warning in (w for r in ruleset for w in r.warnings):
            log.warning("%s", warning)
        return ruleset

    def engine(self, ruleset: RuleSet | None = None) -> Engine:
        rules = self.ruleset() if ruleset is None else ruleset
        engine = Engine(rules, rule_timeout_s=self.settings.rule_timeout_s, between=self.between)
        if self.archive is not None:
            from .provenance.versions import version_of

            reason = "start" if self.archive.version is None else "reload"
            self.archive.activate(version_of(self.settings.rules, rules.names()), reason)
        return engine

    def reload(self, processor: Processor) -> None:
        """Swap freshly loaded rules into `processor`; raises RuleLoadError and keeps the old
        ones if broken. The swap closes the old engine (its rule threads and isolated rules'
        worker processes), or each reload would leak them."""
        processor.swap_engine(self.engine())


@dataclass
class App:
    """Everything `switchboard run` needs, built from one Settings value."""

    settings: Settings
    store: SqlStore
    processor: Processor
    loader: RuleLoader
    daemon: Daemon
    closers: list[Callable[[], Any]]

    @property
    def engine(self) -> Engine:
        engine = self.processor.engine
        assert isinstance(engine, Engine)
        return engine

    def reload_rules(self) -> None:
        """Swap in freshly loaded rules (see `RuleLoader.reload`)."""
        self.loader.reload(self.processor)

    def close(self) -> None:
        self.processor.engine.close()
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:  # closing is best effort; report and go on
                log.warning("close failed: %s", exc)


def build_app(settings: Settings, *, periodic: Sequence[Callable[[], None]] = ()) -> App:
    """Wire the daemon from `settings`; connects to nothing until the loop runs.

    `periodic` hooks run once per loop iteration after the relay (see `Daemon.run_periodic`).
    With `settings.http_port` (or the deprecated `metrics_port`) set, the web server
    (`/metrics`, `/healthz`, `/readyz`, the status page, `/api`) is served on that port.
    """
    from .collections.sweeper import Sweeper
    from .debounce import DebounceSweeper
    from .heartbeat import Heartbeat
    from .source import RabbitSource
    from .web.live import LoopPulse
    from .web.wiring import endpoint

    where = endpoint(settings)  # refuses an open bind without a token before anything starts
    ensure_current(settings.database_url)
    store = SqlStore(settings.database_url)
    closers: list[Callable[[], Any]] = [store.close]
    metrics = Metrics(process=True) if where is not None else None
    source = RabbitSource(settings, client_name=f"switchboard {settings.queue}", metrics=metrics)
    legacy = LegacyContext.from_settings(settings, between=source.keepalive)
    archive = EventArchive(store) if settings.archive else None
    loader = RuleLoader(settings, legacy, between=source.keepalive, archive=archive)
    ruleset = loader.ruleset()
    warn_about_manifest_dir(ruleset, settings)
    warn_about_dataset_names(ruleset, settings)
    crash_guard = SqlCrashGuard(store, settings.max_crashes)
    processor = Processor(
        loader.engine(ruleset),
        store,
        with_status_queue(extractor_message, settings.status_queue_name),
        max_event_bytes=settings.max_event_bytes,
        dataset_names=timed_names(dataset_names(settings, between=source.keepalive), metrics),
        manifest_dir=settings.manifest_dir,
        max_delays=settings.max_delays,
        file_paths=legacy.file_paths,
        crash_guard=crash_guard,
        archive=archive,
    )
    sinks = timed_sinks(
        build_sinks(settings, store) | relay_sinks(settings, settings.sink_timeout_s), metrics
    )
    closers += [sink.close for sink in sinks.values()]
    relay = relay_threads(settings, store, sinks, metrics, throttle_of(settings, store, processor))
    # closers run last to first: the threads stop (each ends its send in hand) before their sinks
    closers.append(lambda: relay.close(timeout_s=settings.sink_timeout_s))
    heartbeat = Heartbeat(
        settings.rabbitmq_uri,
        settings.queue,
        settings.heartbeat_interval_s,
        client_name=f"switchboard-heartbeat {settings.queue}",
    )
    closers.append(heartbeat.close)
    pulse = LoopPulse()
    jobs_periodic = [job_gauge(store, metrics)] if metrics is not None else []
    poller = job_poller(settings, store)  # its own thread, started by the daemon's first loop
    if poller is not None:
        closers.append(poller.close)
        jobs_periodic.append(poller.start)
    router = intake_router(settings, store, processor, metrics=metrics, crash_guard=crash_guard)
    source.on_arrival = router.parse_ahead  # parsing overlaps the wait for the rest of a batch
    daemon = Daemon(
        source,
        archiving(router, archive),
        relay,
        batch_size=settings.batch_size,
        batch_wait_s=settings.batch_wait_s,
        heartbeat=heartbeat.beat,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        reload_rules=functools.partial(reload_counted, loader, processor, metrics),
        periodic=[
            Sweeper(processor),
            DebounceSweeper(processor),
            *retention(settings, store),
            *jobs_periodic,
            *periodic,
        ],
        metrics=metrics,
        on_turn=pulse.beat,
    )
    log_startup(settings, ruleset, sinks)
    if metrics is not None and where is not None:
        from .web.wiring import daemon_server

        metrics.rules_active(len(ruleset), time.time())
        closers += daemon_server(
            settings,
            where,
            metrics=metrics,
            pulse=pulse,
            rules=lambda: processor.rules,
            consuming=lambda: source.connected,
        )
    return App(settings, store, processor, loader, daemon, closers)


def log_startup(settings: Settings, ruleset: RuleSet, sinks: dict[str, Sink]) -> None:
    """One line saying what this daemon is about to do (no secret: the URL is redacted)."""
    from .store.engine import redacted
    from .web.live import version

    log.info(
        "switchboard %s starting: %d rule(s), queue %s, database %s, sinks %s",
        version(),
        len(ruleset),
        settings.queue,
        redacted(settings.database_url),
        ", ".join(sorted(sinks)) or "none",
    )


def reload_counted(loader: RuleLoader, processor: Processor, metrics: Metrics | None) -> None:
    """`loader.reload`, counted as ok or refused (and the rule count and time kept)."""
    try:
        loader.reload(processor)
    except Exception:
        if metrics is not None:
            metrics.reloaded(ok=False)
        raise
    if metrics is not None:
        metrics.reloaded(ok=True)
        metrics.rules_active(len(processor.rules), time.time())


def build_sinks(settings: Settings, members: JobMembers | None = None) -> dict[str, Sink]:
    """A sink for every via whose setting is set (see `sink_registry`); Ray's batch jobs read
    their members from `members` (the store).

    Every sink gives up on a send well within the claim on its row (see Relay: fencing)."""
    return {
        via: kind.build(settings, settings.sink_timeout_s, members)
        for via, kind in SINKS.items()
        if kind.enabled(settings)
    }


def dataset_names(settings: Settings, *, between: Callable[[], None]) -> Any:
    """Dataset-name lookups: they hold up a batch, so one quick retry, then the events wait in
    the retry queue. Without CLOWDER_URL they go to each event's own host, as pyclowder's do."""
    from .dataset_names import DatasetNameLookup

    return DatasetNameLookup(
        clowder_url=settings.clowder_url,
        clowder_key=settings.clowder_key,
        api_version=2 if settings.clowder_version == 2 else 1,
        timeout_s=5.0,
        retries=1,
        cooldown_s=settings.clowder_retry_delay_s,
        between=between,
    )


def warn_about_manifest_dir(ruleset: RuleSet, settings: Settings) -> None:
    """Say which rules get no manifest file because SWITCHBOARD_MANIFEST_DIR is not set."""
    wanting = [r.name for r in ruleset if r.collect and r.collect.manifest_file]
    if wanting and not settings.manifest_dir:
        log.warning("SWITCHBOARD_MANIFEST_DIR is not set: rules %s get no manifest file", wanting)


def warn_about_dataset_names(ruleset: RuleSet, settings: Settings) -> None:
    """Say where dataset names come from when rules read them and CLOWDER_URL is not set."""
    from .dataset_names import rules_need_dataset_names

    if settings.clowder_url or not rules_need_dataset_names(ruleset):
        return
    log.warning(
        "rules may read dataset.name and CLOWDER_URL is not set: names v1 events lack are "
        "looked up at each event's own host with its secretKey, as pyclowder does; set "
        "CLOWDER_URL (and CLOWDER_KEY) if those hosts are not reachable from here"
    )


def throttle_of(settings: Settings, store: SqlStore, processor: Processor) -> Throttle:
    """Back-pressure per target: SWITCHBOARD_LIMITS, then the loaded rule files' `limits:`
    (asked on every admission, so a reload applies at once)."""
    from .store.throttle_sql import SqlAdmissions
    from .throttle import merged_limits

    configured = settings.target_limits()

    def limits() -> dict[str, TargetLimit]:
        return merged_limits(configured, processor.rules.limits)

    return Throttle(
        SqlAdmissions(store.engine, store.clock),
        limits,
        in_flight_timeout_s=settings.in_flight_timeout_s,
        recheck_s=settings.throttle_recheck_s,
    )


def relay_threads(
    settings: Settings,
    store: SqlStore,
    sinks: dict[str, Sink],
    metrics: Metrics | None,
    throttle: Throttle | None = None,
) -> RelayThreads:
    """One relay thread per target, plus one that fails rows whose target has no sink.

    Each thread has its own sink connection and never touches the input connection, so a
    hung Ray or Clowder delays neither the other targets, nor intake, nor broker heartbeats.
    """
    from .collections.manifests import with_manifest_files

    wrapped = with_manifest_files(sinks, store, settings.manifest_dir)  # before sending

    def relay(sinks: dict[str, Sink], **which: Any) -> Relay:
        return Relay(
            store,
            sinks,
            max_attempts=settings.relay_max_attempts,
            backoff_s=settings.relay_backoff_s,
            lease_s=settings.relay_lease_s,
            # a send starting this soon after its claim ends (sink timeout) within the claim
            renew_after_s=0.9 * settings.relay_lease_s - settings.sink_timeout_s,
            metrics=metrics,
            throttle=throttle,
            **which,
        )

    workers = [
        RelayWorker(via, relay({via: sink}, vias=[via]), idle=sink.keepalive)
        for via, sink in wrapped.items()
    ]
    workers.append(RelayWorker("unrouted", relay({}, exclude_vias=list(wrapped))))
    return RelayThreads(workers, backlog_gap_s=settings.relay_backlog_gap_s)


def retention(settings: Settings, store: SqlStore) -> list[Callable[[], None]]:
    """The periodic hook that prunes old outbox rows and ledger ids (none when kept forever)."""
    from .retention import Pruner

    if settings.retention_days <= 0 and settings.retention_rows <= 0:
        return []
    return [
        Pruner(
            store, retention_days=settings.retention_days, retention_rows=settings.retention_rows
        )
    ]


def refuse_rules_without_their_sink(ruleset: RuleSet, settings: Settings) -> None:
    """RuleLoadError if a YAML rule submits through a via whose enabling setting (RAY_ADDRESS,
    CLOWDER_URL; see `sink_registry`) is not set.

    Checked when the daemon starts or reloads, not when rules load, so `check`, `explain`,
    `replay` and `demo` still work anywhere. A Python rule's targets are known only when it
    runs: such submissions fail in the relay (`no sink configured for via=...`).
    """
    problems = []
    for r in ruleset:
        for via in sorted({spec.via for spec in r.submits}):
            kind = SINKS.get(via)
            if kind is None or kind.enabled(settings):
                continue
            reason = f"rule {r.name!r} submits via {via} but {kind.variable} is not set"
            problems.append(Problem.at(r.source, reason))
    if problems:
        raise RuleLoadError(problems)


def run_daemon(settings: Settings, *, migrate: bool = False) -> int:
    """`switchboard run`: build, install signal handlers, loop until SIGTERM/SIGINT.

    A database that is down at startup is waited for with backoff (a deploy may start us before
    PostgreSQL), so only a stop request or a real error (unmigrated schema, broken rules) ends it.
    With RAY_ADDRESS=local it runs a private Ray head for as long as it runs.
    """
    from .ray_embedded import with_local_ray

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with with_local_ray(settings) as ray_settings:  # RAY_ADDRESS=local: a private head
        return _run(ray_settings, migrate=migrate, stop=stop)


def _run(settings: Settings, *, migrate: bool, stop: threading.Event) -> int:
    app = _build_when_database_is_up(settings, migrate=migrate, stop=stop)
    if app is None:
        return 0
    interpreter.settle()  # a long-lived, threaded process: see `interpreter`
    signal.signal(signal.SIGTERM, lambda *_: app.daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: app.daemon.stop())
    signal.signal(signal.SIGHUP, lambda *_: app.daemon.request_reload())
    if stop.is_set():
        app.daemon.stop()
    try:
        return app.daemon.run()
    finally:
        app.close()


def _build_when_database_is_up(
    settings: Settings, *, migrate: bool, stop: threading.Event
) -> App | None:
    """Migrate (if asked) and build the app, retrying while the database is unreachable."""
    from .store.engine import redacted
    from .store.errors import store_errors
    from .store.migrate import upgrade

    backoff = Backoff()
    where = redacted(settings.database_url)
    while not stop.is_set():
        try:
            with store_errors(where):
                if migrate:
                    upgrade(settings.database_url)
                return build_app(settings)
        except NotMigrated:
            raise  # a real refusal, not an outage: the CLI says what to run
        except StoreError as exc:
            delay_s = backoff.next_delay_s()
            log.warning("database unreachable at startup (%s); retrying in %.1f s", exc, delay_s)
            stop.wait(delay_s)
    return None
