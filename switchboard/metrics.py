"""Optional Prometheus metrics: what the daemon counts, served over HTTP when a port is set."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


class Metrics:
    """Counters and one histogram in a registry of their own (so tests can make many).

    Labels are rule-free on purpose: targets (extractors) are few, rules may be many.
    Implements `ports.Metrics` (the counters keep their names for the source's use).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._job_labels: set[tuple[str, str]] = set()
        self.events = Counter(
            "switchboard_events", "Events taken from the input queue", registry=self.registry
        )
        self.duplicates = Counter(
            "switchboard_duplicate_events",
            "Events already in the dedup ledger",
            registry=self.registry,
        )
        self.batches = Counter(
            "switchboard_batches", "Batches committed and acked", registry=self.registry
        )
        self.submissions = Counter(
            "switchboard_submissions",
            "Outbox rows by target and outcome (queued, sent, retried, failed)",
            ["target", "status"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "switchboard_dead_letters",
            "Events moved to error.<queue>, by reason (malformed, poison, oversized)",
            ["reason"],
            registry=self.registry,
        )
        self.delayed = Counter(
            "switchboard_delayed_events",
            "Events parked in retry.<queue> while Clowder is unreachable",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "switchboard_batch_seconds",
            "Time to handle one batch: process, commit, settle",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )

        self.jobs = Gauge(
            "switchboard_jobs",
            "Jobs by target and status (refreshed from the database)",
            ["target", "status"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "switchboard_job_seconds",
            "Job duration, start to finish, by target",
            ["target"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.orphan_updates = Counter(
            "switchboard_orphan_updates",
            "Status updates naming no job we know (kept as orphans)",
            registry=self.registry,
        )

    # -- jobs ------------------------------------------------------------------------------------

    def job_finished(self, target: str, duration_s: float) -> None:
        self.job_seconds.labels(target).observe(duration_s)

    def job_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """Set the jobs gauge to `counts` ((target, status) -> jobs); others drop to 0."""
        for labels in list(self._job_labels - counts.keys()):
            self.jobs.labels(*labels).set(0)
        for (target, status), count in counts.items():
            self.jobs.labels(target, status).set(count)
        self._job_labels = set(counts) | self._job_labels

    # -- ports.Metrics ---------------------------------------------------------------------------

    def batch(self, events: int, duplicates: int, duration_s: float) -> None:
        self.events.inc(events)
        self.batches.inc()
        self.duplicates.inc(duplicates)
        self.batch_seconds.observe(duration_s)

    def dead_lettered(self, reason: str, count: int) -> None:
        if count:
            self.dead_letters.labels(reason).inc(count)

    def delayed_events(self, count: int) -> None:
        self.delayed.inc(count)

    def submission(self, extractor: str, status: str) -> None:
        self.submissions.labels(extractor, status).inc()

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Expose `/metrics` on `addr:port` from a background thread; returns the server.

        Only this machine by default (SWITCHBOARD_METRICS_HOST widens it): the metrics name
        every target, which is more than an open port should tell anyone who can reach it.
        """
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        log.info("metrics on %s:%d", addr, port, extra={"metrics_port": port})
        return server

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 if never set); for tests and `status`-like reports."""
        found = self.registry.get_sample_value(name, labels or None)
        return found or 0.0
