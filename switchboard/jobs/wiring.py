"""What the composition root builds for jobs: the intake router with the status route, the
sink for forwarded updates, and the periodic refresh of the jobs gauge."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..intake import Route, Router
from ..ports import CrashGuard, Sink
from ..settings import Settings
from .forwarding import RELAY_VIA, ForwardingPolicy
from .status_intake import StatusHandler, status_route
from .store import JobStore

if TYPE_CHECKING:
    from ..metrics import Metrics
    from ..processor import Processor
    from ..store.sql import SqlStore

GAUGE_INTERVAL_S = 15.0


def intake_router(
    settings: Settings,
    store: SqlStore,
    processor: Processor,
    *,
    metrics: Metrics | None = None,
    crash_guard: CrashGuard | None = None,
) -> Router:
    """Status updates (routing key = our status queue) first, then Clowder events."""
    from ..processor import event_route

    handler = StatusHandler(
        store.engine,
        store.clock,
        ForwardingPolicy(settings.status_forward, settings.clowder_version),
        metrics=metrics,
        crash_guard=crash_guard,
    )
    routes: list[Route[Any]] = [
        status_route(settings.status_queue_name, handler),
        event_route(processor, settings.max_event_bytes),
    ]
    return Router(routes, crash_guard)


def relay_sinks(settings: Settings, timeout_s: float) -> dict[str, Sink]:
    """The sink publishing forwarded updates to Clowder's reply queues (none when off)."""
    if not settings.status_forward:
        return {}
    from ..sinks.extractor_queue import ExtractorQueueSink

    client = f"switchboard-status-relay {settings.queue}"
    return {
        RELAY_VIA: ExtractorQueueSink(
            settings.rabbitmq_uri, client_name=client, timeout_s=timeout_s
        )
    }


def job_gauge(
    store: SqlStore, metrics: Metrics, interval_s: float = GAUGE_INTERVAL_S
) -> Callable[[], None]:
    """A periodic hook setting the jobs-by-target-and-status gauge every `interval_s`."""
    jobs = JobStore(store.engine, store.clock)
    next_at = [0.0]

    def refresh_job_gauge() -> None:
        now = time.monotonic()
        if now < next_at[0]:
            return
        next_at[0] = now + interval_s
        metrics.job_counts(jobs.counts())

    return refresh_job_gauge
