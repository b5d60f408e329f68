"""Relaying status updates to Clowder, unchanged, through the outbox.

Each update an extractor sent to our status queue is queued (in the transaction that records
it) as an outbox row of via `status-relay` for the job's original `reply_to`, with the job's
original `correlation_id` and the body as received; a relay thread publishes it like any
submission, so a crash neither loses one nor sends one twice beyond at-least-once.

Clowder v2 fails on job ids that are not its own, so for `clowder_version == 2` only updates
naming the Clowder job id of a job Clowder issued (a REST submission) are forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..store.job_records import UNTRACKED_VIAS
from ..store.statements import write_statements
from .views import JobView

RELAY_VIA = next(iter(UNTRACKED_VIAS))  # "status-relay"
FORWARD_ID_PREFIX = "fwd-"


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    """Whether an update is relayed: `enabled` (SWITCHBOARD_STATUS_FORWARD) and the
    origin's Clowder version."""

    enabled: bool = True
    clowder_version: int = 1

    def forwards(self, job: JobView, body: Mapping[str, Any]) -> bool:
        if not self.enabled or not job.reply_to:
            return False
        if self.clowder_version == 2:
            return bool(job.clowder_job_id) and body.get("job_id") == job.clowder_job_id
        return True


def forward_id(update_key: str) -> str:
    """The outbox id of an update's forwarded copy (64 characters, one per update)."""
    return FORWARD_ID_PREFIX + update_key[: 64 - len(FORWARD_ID_PREFIX)]


def queue_forward(
    connection: Connection,
    job: JobView,
    body: Mapping[str, Any],
    update_key: str,
    now: datetime,
) -> bool:
    """Queue the update for the job's original reply_to; False if it was queued before."""
    assert job.reply_to is not None
    row_id = forward_id(update_key)
    properties: dict[str, Any] = {"delivery_mode": 2, "message_id": row_id}
    if job.correlation_id:
        properties["correlation_id"] = job.correlation_id
    row = {
        "job_id": row_id,
        "rule": job.rule,
        "extractor": job.reply_to,
        "via": RELAY_VIA,
        "resource_type": job.resource_type,
        "resource_id": job.resource_id,
        "parameters": {},
        "event_message_id": update_key,
        "body": dict(body),
        "properties": properties,
        "options": {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    statement = write_statements(connection.dialect.name).add_submission
    return connection.execute(statement, row).first() is not None
