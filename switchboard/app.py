"""The composition root: the one place where settings, adapters, engine and loop are wired."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .daemon import Backoff, Daemon
from .engine import Engine
from .errors import NotMigrated, Problem, RuleLoadError, StoreError
from .outgoing import extractor_message
from .processor import Processor
from .relay import Relay
from .relay_threads import RelayThreads, RelayWorker
from .rules import load_rules
from .rules.legacy import LegacyContext
from .rules.model import RuleSet
from .settings import Settings
from .store.intake_attempts import SqlCrashGuard
from .store.migrate import ensure_current
from .store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything `switchboard run` needs, built from one Settings value."""

    settings: Settings
    store: SqlStore
    engine: Engine
    daemon: Daemon
    closers: list[Callable[[], Any]]
    legacy: LegacyContext | None = None  # shared by every load, so its file-path cache is too

    def reload_rules(self) -> None:
        """Swap in freshly loaded rules; raises RuleLoadError and keeps the old ones if broken."""
        ruleset = load_rules(
            self.settings.rules,
            legacy=self.legacy or LegacyContext.from_settings(self.settings),
            python_allowlist=self.settings.python_allowlist,
        )
        refuse_rules_without_their_sink(ruleset, self.settings)
        timeout_s, between = self.settings.rule_timeout_s, self.engine.between
        old, self.engine = self.engine, Engine(ruleset, rule_timeout_s=timeout_s, between=between)
        self.daemon.processor.engine = self.engine
        old.close()  # its rule threads and isolated rules' worker processes, or each reload leaks

    def close(self) -> None:
        self.engine.close()
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:  # closing is best effort; report and go on
                log.warning("close failed: %s", exc)


def build_app(settings: Settings, *, periodic: Sequence[Callable[[], None]] = ()) -> App:
    """Wire the daemon from `settings`; connects to nothing until the loop runs.

    `periodic` hooks run once per loop iteration after the relay (see `Daemon.run_periodic`).
    With `settings.metrics_port` set, Prometheus metrics are served on that port.
    """
    from .clowder import ClowderClient
    from .collections.sweeper import Sweeper
    from .dataset_names import DatasetNameLookup
    from .heartbeat import Heartbeat
    from .sinks.clowder_api import ClowderApiSink
    from .sinks.extractor_queue import ExtractorQueueSink
    from .source import RabbitSource

    ensure_current(settings.database_url)
    legacy = LegacyContext.from_settings(settings)
    ruleset = load_rules(settings.rules, legacy=legacy, python_allowlist=settings.python_allowlist)
    refuse_rules_without_their_sink(ruleset, settings)
    if not settings.manifest_dir and (
        wanting := [r.name for r in ruleset if r.collect and r.collect.manifest_file]
    ):
        log.warning("SWITCHBOARD_MANIFEST_DIR is not set: rules %s get no manifest file", wanting)
    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    store = SqlStore(settings.database_url)
    closers: list[Callable[[], Any]] = [store.close]
    metrics = None
    if settings.metrics_port:
        from .metrics import Metrics

        metrics = Metrics()
        server = metrics.serve(settings.metrics_port, settings.metrics_host)
        closers += [server.shutdown, server.server_close]
    source = RabbitSource(settings, client_name=f"switchboard {settings.queue}", metrics=metrics)
    engine.between = source.keepalive  # broker heartbeats while isolated rules are killed
    if legacy.file_paths is not None:
        legacy.file_paths.guard.between = source.keepalive  # broker heartbeats during slow lookups
    # Every sink gives up on a send well within the claim on its row (see Relay: fencing).
    timeout_s = settings.sink_timeout_s
    sink = ExtractorQueueSink(
        settings.rabbitmq_uri, client_name=f"switchboard-sink {settings.queue}", timeout_s=timeout_s
    )
    closers.append(sink.close)
    sinks: dict[str, Any] = {"amqp": sink}
    version = 2 if settings.clowder_version == 2 else 1
    if settings.clowder_url:
        sinks["clowder-api"] = ClowderApiSink(  # no retries of its own: the relay retries
            ClowderClient(
                settings.clowder_url,
                settings.clowder_key,
                api_version=version,
                timeout_s=timeout_s,
                retries=0,
            )
        )
    # Lookups hold up a batch: one quick retry, then the events wait in the retry queue.
    # Without CLOWDER_URL they go to each event's own host, as pyclowder's calls do.
    names = DatasetNameLookup(
        clowder_url=settings.clowder_url,
        clowder_key=settings.clowder_key,
        api_version=version,
        timeout_s=5.0,
        retries=1,
        cooldown_s=settings.clowder_retry_delay_s,
        between=source.keepalive,
    )
    warn_about_dataset_names(ruleset, settings)
    if settings.ray_address:
        from .sinks.ray_jobs import RayJobSink  # imports Ray only when it sends

        sinks["ray"] = RayJobSink(
            settings.ray_address, timeout_s=timeout_s / RayJobSink.REQUESTS_PER_SEND
        )
        closers.append(sinks["ray"].close)
    processor = Processor(
        engine,
        store,
        extractor_message,
        max_event_bytes=settings.max_event_bytes,
        dataset_names=names,
        manifest_dir=settings.manifest_dir,
        max_delays=settings.max_delays,
        file_paths=legacy.file_paths,
        crash_guard=SqlCrashGuard(store, settings.max_crashes),
    )
    relay = relay_threads(settings, store, sinks, metrics)
    # closers run last to first: the threads stop (each ends its send in hand) before their sinks
    closers.append(lambda: relay.close(timeout_s=settings.sink_timeout_s))
    heartbeat = Heartbeat(
        settings.rabbitmq_uri,
        settings.queue,
        settings.heartbeat_interval_s,
        client_name=f"switchboard-heartbeat {settings.queue}",
    )
    closers.append(heartbeat.close)
    daemon = Daemon(
        source,
        processor,
        relay,
        batch_size=settings.batch_size,
        batch_wait_s=settings.batch_wait_s,
        heartbeat=heartbeat.beat,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        periodic=[Sweeper(processor), *retention(settings, store), *periodic],
        metrics=metrics,
    )
    app = App(settings, store, engine, daemon, closers, legacy)
    daemon.reload_rules = app.reload_rules
    return app


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


def relay_threads(
    settings: Settings, store: SqlStore, sinks: dict[str, Any], metrics: Any
) -> RelayThreads:
    """One relay thread per target, plus one that fails rows whose target has no sink.

    Each thread has its own sink connection and never touches the input connection, so a
    hung Ray or Clowder delays neither the other targets, nor intake, nor broker heartbeats.
    """
    from .collections.manifests import with_manifest_files

    options: dict[str, Any] = {
        "max_attempts": settings.relay_max_attempts,
        "backoff_s": settings.relay_backoff_s,
        "lease_s": settings.relay_lease_s,
        "metrics": metrics,
    }
    wrapped = with_manifest_files(sinks, store.engine, settings.manifest_dir)  # before sending
    workers = [
        RelayWorker(
            via,
            Relay(store, {via: sink}, vias=[via], **options),
            idle=getattr(sinks[via], "keepalive", None),
        )
        for via, sink in wrapped.items()
    ]
    workers.append(RelayWorker("unrouted", Relay(store, {}, exclude_vias=list(wrapped), **options)))
    return RelayThreads(workers)


def retention(settings: Settings, store: SqlStore) -> list[Callable[[], None]]:
    """The periodic hook that prunes old outbox rows and ledger ids (none when kept forever)."""
    from .retention import Pruner

    if settings.retention_days <= 0:
        return []
    return [Pruner(store, retention_days=settings.retention_days)]


SINK_SETTINGS = {  # via -> (the setting that configures its sink, its environment variable)
    "ray": ("ray_address", "RAY_ADDRESS"),
    "clowder-api": ("clowder_url", "CLOWDER_URL"),
}


def refuse_rules_without_their_sink(ruleset: RuleSet, settings: Settings) -> None:
    """RuleLoadError if a YAML rule submits `via: ray` or `via: clowder-api` and the setting that
    configures that target (RAY_ADDRESS, CLOWDER_URL) is not set.

    Checked when the daemon starts or reloads, not when rules load, so `check`, `explain`,
    `replay` and `demo` still work anywhere. A Python rule's targets are known only when it
    runs: such submissions fail in the relay (`no sink configured for via=...`).
    """
    problems = []
    for r in ruleset:
        for via in sorted({spec.via for spec in r.submits} & SINK_SETTINGS.keys()):
            field_name, variable = SINK_SETTINGS[via]
            if getattr(settings, field_name):
                continue
            reason = f"rule {r.name!r} submits via {via} but {variable} is not set"
            problems.append(Problem.at(r.source, reason))
    if problems:
        raise RuleLoadError(problems)


def run_daemon(settings: Settings, *, migrate: bool = False) -> int:
    """`switchboard run`: build, install signal handlers, loop until SIGTERM/SIGINT.

    A database that is down at startup is waited for with backoff (a deploy may start us before
    PostgreSQL), so only a stop request or a real error (unmigrated schema, broken rules) ends it.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = _build_when_database_is_up(settings, migrate=migrate, stop=stop)
    if app is None:
        return 0
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
