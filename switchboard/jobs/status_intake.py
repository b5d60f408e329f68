"""The status-queue route of the message router: each batch of updates recorded in one
transaction (timeline, job, orphans, forwarded copies), acked only after it commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..intake import BatchResult, Parsed, Route
from ..ports import Clock, CrashGuard, Delivery
from ..store.engine import redacted
from ..store.errors import store_errors
from ..store.job_records import Outcome, find_job, record_orphan, record_update
from .forwarding import ForwardingPolicy, queue_forward
from .status_messages import StatusMessage, parse_status_message

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
        outcomes: list[Outcome] = []
        orphans = forwarded = 0
        with store_errors(redacted(self.engine.url)), self.engine.begin() as connection:
            for item in items:
                message = item.message
                job = find_job(
                    connection,
                    correlation_id=message.correlation_id,
                    named_job_id=message.named_job_id,
                )
                update = message.update(now)
                if job is None:
                    if record_orphan(
                        connection,
                        update,
                        now,
                        correlation_id=message.correlation_id,
                        named_job_id=message.named_job_id,
                        body=message.body,
                    ):
                        orphans += 1
                    continue
                outcome = record_update(connection, job.job_id, update, now, job=job)
                outcomes.append(outcome)
                if outcome.recorded and self.policy.forwards(job, message.body):
                    # a microsecond apart: the relay sends them in the order they came
                    due = now + timedelta(microseconds=forwarded)
                    forwarded += queue_forward(connection, job, message.body, message.key, due)
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
