"""Optional Prometheus metrics: what the daemon counts, served over HTTP when a port is set."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

log = logging.getLogger(__name__)

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
CALL_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


def is_timeout(error: str) -> bool:
    """Whether a rule error is its time limit (a hang) rather than an exception."""
    text = error.lower()
    return "timed out" in text or "time limit" in text


class Metrics:
    """Counters and one histogram in a registry of their own (so tests can make many).

    Most labels are targets (extractors), which are few; the per-rule counters
    (`switchboard_rule_*`) are the exception, since alerting on one broken rule needs them.
    Implements `ports.Metrics` (the counters keep their names for the source's use).
    With `process=True` the registry also has the process and GC collectors.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = False) -> None:
        # `_created` series are one more series per counter that no alert reads: off (a
        # process-wide switch of prometheus_client, the same for every registry)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the library is untyped
        self.registry = registry if registry is not None else CollectorRegistry()
        self._job_labels: set[tuple[str, str]] = set()
        if process:
            ProcessCollector(registry=self.registry)
            self.registry.register(GC_COLLECTOR)
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

        self.rule_matches = Counter(
            "switchboard_rule_matches",
            "Events each rule matched",
            ["rule"],
            registry=self.registry,
        )
        self.rule_errors = Counter(
            "switchboard_rule_errors",
            "Rule failures on one event, by kind: error (raised, bad template) or timeout",
            ["rule", "kind"],
            registry=self.registry,
        )
        self.call_seconds = Histogram(
            "switchboard_call_seconds",
            "Time of one outside call: amqp (relay publish), clowder-api (REST submit), ray "
            "(job submit), clowder-dataset-name (name lookup)",
            ["call", "outcome"],
            buckets=CALL_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "switchboard_rule_reloads",
            "Rule reloads (SIGHUP) by outcome: ok or refused (the last good rules kept)",
            ["outcome"],
            registry=self.registry,
        )
        self.reload_success = Gauge(
            "switchboard_rule_reload_last_success_timestamp_seconds",
            "When rules were last loaded successfully (startup or reload), Unix time",
            registry=self.registry,
        )
        self.rules_loaded = Gauge(
            "switchboard_rules_loaded", "Rules in the active rule set", registry=self.registry
        )
        self.build_info = Gauge(
            "switchboard_build_info",
            "Always 1; the labels say which build runs",
            ["version", "python"],
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

    def rule_outcomes(self, matched: Sequence[str], failed: Sequence[tuple[str, str]]) -> None:
        for rule in matched:
            self.rule_matches.labels(rule).inc()
        for rule, error in failed:
            self.rule_errors.labels(rule, "timeout" if is_timeout(error) else "error").inc()

    # -- beyond the port ------------------------------------------------------------------------

    def call(self, call: str, outcome: str, duration_s: float) -> None:
        """One outside call's time; `outcome` is ok or error."""
        self.call_seconds.labels(call, outcome).observe(duration_s)

    def rules_active(self, count: int, at_unix_s: float) -> None:
        """A rule set was loaded: how many rules, and when."""
        self.rules_loaded.set(count)
        self.reload_success.set(at_unix_s)

    def reloaded(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "refused").inc()

    def build(self, version: str, python: str) -> None:
        self.build_info.labels(version, python).set(1)

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
