"""The status-queue route of the message router: each batch of updates recorded in one
transaction (timeline, job, orphans, forwarded copies), acked only after it commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ..intake import BatchResult, Parsed, Route
from ..ports import Clock, CrashGuard, Delivery
from ..store.engine import redacted
from ..store.errors import store_errors
from ..store.job_batches import find_jobs, job_of, record_updates
from ..store.job_records import Outcome, Update, record_orphan
from .forwarding import RELAY_VIA, ForwardingPolicy, forward_row, queue_forwards
from .status_messages import StatusMessage, parse_status_message
from .views import JobView

if TYPE_CHECKING:
    from ..metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class StatusHandler:
    """Records status updates (implements `intake.Handler[StatusMessage]`).

    Duplicates (redeliveries) add nothing; an update for a job that has ended is kept in its
    timeline without changing it; one naming no job we know is kept as an orphan."""

    engine: Engine
    clock: Clock
    policy: ForwardingPolicy
    metrics: Metrics | None = None
    crash_guard: CrashGuard | None = None

    def handle(
        self,
        items: Sequence[Parsed[StatusMessage]],
        result: BatchResult,
        fingerprint: str | None = None,
    ) -> None:
        now = self.clock()
        orphans = 0
        with store_errors(redacted(self.engine.url)), self.engine.begin() as connection:
            messages = [item.message for item in items]
            found = find_jobs(
                connection,
                [m.correlation_id for m in messages],
                [m.named_job_id for m in messages],
            )
            tracked: list[tuple[JobView, Update, StatusMessage]] = []
            for message in messages:
                job = job_of(found, message.correlation_id, message.named_job_id)
                update = message.update(now)
                if job is not None:
                    tracked.append((job, update, message))
                elif record_orphan(
                    connection,
                    update,
                    now,
                    correlation_id=message.correlation_id,
                    named_job_id=message.named_job_id,
                    body=message.body,
                ):
                    orphans += 1
            outcomes = record_updates(connection, [(job, u) for job, u, _ in tracked], now)
            forwards: list[dict[str, Any]] = []
            for (job, _, message), outcome in zip(tracked, outcomes, strict=True):
                if outcome.recorded and self.policy.forwards(job, message.body):
                    # a microsecond apart: the relay sends them in the order they came
                    due = now + timedelta(microseconds=len(forwards))
                    forwards.append(forward_row(job, message.body, message.key, due))
            queue_forwards(connection, forwards)
        if forwards:
            result.queued_vias.add(RELAY_VIA)
        result.committed.extend(item.delivery for item in items)
        result.duplicates += sum(1 for outcome in outcomes if not outcome.recorded)
        if fingerprint is not None and self.crash_guard is not None:
            self.crash_guard.forget(fingerprint)
        self._count(outcomes, orphans)

    def _count(self, outcomes: Sequence[Outcome], orphans: int) -> None:
        if orphans:
            log.warning("%d status update(s) for no job we know kept as orphans", orphans)
        if self.metrics is None:
            return
        self.metrics.orphan_updates.inc(orphans)
        for outcome in outcomes:
            if outcome.finished and outcome.job is not None:
                job = outcome.job
                self.metrics.job_finished(job.target, job.elapsed_s(self.clock()))


def status_route(status_queue: str, handler: StatusHandler) -> Route[StatusMessage]:
    """The router's route for deliveries published to `status_queue` (their routing key)."""

    def accepts(delivery: Delivery) -> bool:
        return delivery.routing_key == status_queue

    return Route(parse=parse_status_message, handler=handler, accepts=accepts)
