"""The composition root: the one place where settings, adapters, engine and loop are wired."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .daemon import Daemon
from .engine import Engine
from .outgoing import extractor_message
from .processor import Processor
from .relay import Relay
from .rules import load_rules
from .settings import Settings
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

    def reload_rules(self) -> None:
        """Swap in freshly loaded rules; raises RuleLoadError and keeps the old ones if broken."""
        ruleset = load_rules(self.settings.rules)
        self.engine = Engine(ruleset, rule_timeout_s=self.settings.rule_timeout_s)
        self.daemon.processor.engine = self.engine

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:  # closing is best effort; report and go on
                log.warning("close failed: %s", exc)


def build_app(settings: Settings) -> App:
    """Wire the daemon from `settings`; connects to nothing until the loop runs."""
    from .clowder import ClowderClient
    from .heartbeat import Heartbeat
    from .sinks.clowder_api import ClowderApiSink
    from .sinks.extractor_queue import ExtractorQueueSink
    from .source import RabbitSource

    ensure_current(settings.database_url)
    ruleset = load_rules(settings.rules)
    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    store = SqlStore(settings.database_url)
    clowder = (
        ClowderClient(settings.clowder_url, settings.clowder_key) if settings.clowder_url else None
    )
    source = RabbitSource(settings)
    sinks: dict[str, Any] = {"amqp": ExtractorQueueSink(settings.rabbitmq_uri)}
    if clowder is not None:
        sinks["clowder-api"] = ClowderApiSink(clowder)
    processor = Processor(
        engine,
        store,
        extractor_message,
        max_event_bytes=settings.max_event_bytes,
        dataset_names=clowder,
    )
    relay = Relay(
        store,
        sinks,
        max_attempts=settings.relay_max_attempts,
        backoff_s=settings.relay_backoff_s,
    )
    heartbeat = Heartbeat(settings.rabbitmq_uri, settings.queue, settings.heartbeat_interval_s)
    daemon = Daemon(
        source,
        processor,
        relay,
        batch_size=settings.batch_size,
        batch_wait_s=settings.batch_wait_s,
        heartbeat=heartbeat.beat,
        heartbeat_interval_s=settings.heartbeat_interval_s,
    )
    closers = [store.close, sinks["amqp"].close, heartbeat.close]
    app = App(settings, store, engine, daemon, closers)
    daemon.reload_rules = app.reload_rules
    return app


def run_daemon(settings: Settings) -> int:
    """`switchboard run`: build, install signal handlers, loop until SIGTERM/SIGINT."""
    app = build_app(settings)
    signal.signal(signal.SIGTERM, lambda *_: app.daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: app.daemon.stop())
    signal.signal(signal.SIGHUP, lambda *_: app.daemon.request_reload())
    try:
        return app.daemon.run()
    finally:
        app.close()
