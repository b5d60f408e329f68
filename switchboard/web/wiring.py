"""Builds the web server for the daemon and for `switchboard web` (called from the roots only)."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from ..clock import utc_now
from ..errors import SettingsError
from ..metrics import Metrics
from ..rules.model import RuleSet
from ..settings import Settings
from ..store.engine import make_engine, redacted
from .auth import require_token_off_loopback
from .daemon_live import DaemonLive
from .gauges import StateGauges
from .job_filters import JobsReader
from .live import LoopPulse, StaticLive, database_check, version
from .queue_depths import QueueDepths
from .server import WebServer
from .site import Site
from .tracked_jobs import TrackedJobs
from .views import Views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str


def endpoint(settings: Settings) -> Endpoint | None:
    """Where to serve: SWITCHBOARD_HTTP_PORT/HOST, else the deprecated METRICS_PORT/HOST; None
    when neither port is set. SettingsError for a non-loopback bind without a token."""
    chosen = settings.http_port
    host, variable = settings.http_host, "SWITCHBOARD_HTTP_HOST"
    if not chosen and settings.metrics_port:
        chosen, host, variable = (
            settings.metrics_port,
            settings.metrics_host,
            "SWITCHBOARD_METRICS_HOST",
        )
        log.warning(
            "SWITCHBOARD_METRICS_PORT and SWITCHBOARD_METRICS_HOST are deprecated: set "
            "SWITCHBOARD_HTTP_PORT and SWITCHBOARD_HTTP_HOST (the same server now also answers "
            "/healthz, /readyz, / and /api)"
        )
    if not chosen:
        return None
    return checked_endpoint(host, chosen, settings.http_token, variable=variable)


def checked_endpoint(host: str, port: int, token: str, *, variable: str) -> Endpoint:
    """`host:port` (port 0: a free one); SettingsError off loopback without a token."""
    require_token_off_loopback(host, token, variable=variable)
    return Endpoint(host, port, token)


def jobs_reader(engine: Any) -> JobsReader:
    """Tracked jobs (the jobs tables of migration 0006) with their timelines."""
    return TrackedJobs()


def daemon_server(
    settings: Settings,
    where: Endpoint,
    *,
    metrics: Metrics,
    pulse: LoopPulse,
    rules: Callable[[], RuleSet],
    consuming: Callable[[], bool],
) -> list[Callable[[], object]]:
    """Start the daemon's server (metrics with the state gauges, probes, pages, API); returns
    what closes it, in the order the app's closers run them (last first: the server, then its
    database engine)."""
    database = redacted(settings.database_url)
    engine = make_engine(settings.database_url, reads_only=True)  # never the write lock
    depths = QueueDepths(settings.rabbitmq_uri, settings.queue)
    metrics.build(version(), platform.python_version())
    state = CollectorRegistry()  # apart from the counters: see Site
    state.register(StateGauges(engine, depths, seconds_since_turn=pulse.seconds_since))
    live = DaemonLive(
        queue=settings.queue,
        pulse=pulse,
        max_stall_s=settings.health_max_stall_s,
        metrics=metrics,
        rules=rules,
        consuming=consuming,
        database=database_check(engine, database),
    )
    views = Views(live, jobs_reader(engine), database, depths, clock=utc_now)
    site = Site(views, engine, (metrics.registry, state), token=where.token)
    try:
        server = WebServer(site, where.host, where.port).start()
    except OSError as exc:  # the port is taken, or the address is not this machine's
        engine.dispose()
        raise SettingsError(f"cannot listen on {where.host}:{where.port}: {exc}") from None
    return [engine.dispose, server.close]


def standalone_server(
    settings: Settings, where: Endpoint, *, engine: Any, ruleset: RuleSet | None
) -> WebServer:
    """`switchboard web`: the same pages from the database alone (metrics: its state gauges)."""
    database = redacted(settings.database_url)
    registry = CollectorRegistry()
    registry.register(StateGauges(engine))
    live = StaticLive(settings.queue, ruleset, database_check=database_check(engine, database))
    views = Views(live, jobs_reader(engine), database, None, clock=utc_now)
    return WebServer(Site(views, engine, (registry,), token=where.token), where.host, where.port)
