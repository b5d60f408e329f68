"""Prometheus gauges read from the database (and the broker) when /metrics is scraped.

Outbox backlog and its oldest pending row's age, open collections and the oldest one's age,
failed submissions, and the dead-letter and retry queues' depths: state, not events, so they
are read at scrape time instead of being counted by the loop, and every replica reports the
same figures (alert on `max`, not `sum`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from ..clock import utc_now
from .queries import open_collections, outbox_summary
from .queue_depths import QueueDepths

log = logging.getLogger(__name__)


class StateGauges:
    """A prometheus_client collector over the store's engine (and the queue depths, if given)."""

    def __init__(
        self,
        engine: Any,
        depths: QueueDepths | None = None,
        *,
        seconds_since_turn: Callable[[], float] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.depths = depths
        self.seconds_since_turn = seconds_since_turn
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # collected fresh on every scrape; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "switchboard_database_up", "1 if the database answered this scrape's queries"
        )
        try:
            yield from self._from_database()
        except Exception as exc:  # a scrape must still answer while the database is down
            log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield up
        if self.seconds_since_turn is not None:
            loop = GaugeMetricFamily(
                "switchboard_loop_seconds_since_turn",
                "Seconds since the daemon's loop last came round (/healthz fails past a bound)",
            )
            loop.add_metric([], self.seconds_since_turn())
            yield loop
        if self.depths is not None:
            yield from self._queues()

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        with self.engine.connect() as connection:
            outbox = outbox_summary(connection)
            opened = open_collections(connection)
        rows = GaugeMetricFamily(
            "switchboard_outbox_rows", "Outbox rows by status (failed: given up)", labels=["status"]
        )
        for status, count in sorted(outbox.counts.items()):
            rows.add_metric([status], count)
        oldest = GaugeMetricFamily(
            "switchboard_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row (0 when none is pending)",
        )
        oldest.add_metric([], outbox.oldest_pending_age_s(now))
        gathering = GaugeMetricFamily("switchboard_collections_open", "Collections still gathering")
        gathering.add_metric([], opened.count)
        age = GaugeMetricFamily(
            "switchboard_collections_oldest_open_age_seconds",
            "Age of the oldest open collection (0 when none is open)",
        )
        since = opened.oldest_opened_at
        age.add_metric([], max(0.0, (now - since).total_seconds()) if since else 0.0)
        yield from (rows, oldest, gathering, age)

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        assert self.depths is not None
        found = self.depths.depths()
        depth = GaugeMetricFamily(
            "switchboard_queue_messages",
            "Messages waiting in our dead-letter (error.<queue>) and retry queues",
            labels=["queue"],
        )
        for name, value in ((found.error_queue, found.error), (found.retry_queue, found.retry)):
            if value is not None:
                depth.add_metric([name], value)
        yield depth
