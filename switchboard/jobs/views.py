"""A job as read from the store, and its timeline rows, in the shape the CLI and JSON show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

# The `switchboard jobs --json` keys, in order (issue 9).
JOB_KEYS = (
    "job_id",
    "rule",
    "target",
    "via",
    "resource_type",
    "resource_id",
    "dataset_id",
    "clowder_job_id",
    "ray_submission_id",
    "status",
    "latest_message",
    "created_at",
    "sent_at",
    "started_at",
    "updated_at",
    "finished_at",
    "elapsed_s",
)
_TIMES = ("created_at", "sent_at", "started_at", "updated_at", "finished_at")


@dataclass(frozen=True, slots=True)
class JobView:
    """One job's row. `reply_to`/`correlation_id` are where its updates are forwarded."""

    job_id: str
    rule: str
    target: str
    via: str
    resource_type: str
    resource_id: str
    dataset_id: str | None
    clowder_job_id: str | None
    ray_submission_id: str | None
    reply_to: str | None
    correlation_id: str | None
    status: str
    latest_message: str | None
    created_at: datetime
    sent_at: datetime | None
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobView:
        """From a `jobs` row (a RowMapping)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def elapsed_s(self, now: datetime) -> float:
        """From its start (or, not started yet, its creation) to its finish, or to `now`."""
        begin = self.started_at or self.created_at
        end = self.finished_at or now
        return max(0.0, round((end - begin).total_seconds(), 3))

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The `--json` object: JOB_KEYS, times in ISO 8601 with offset."""
        out: dict[str, Any] = {}
        for key in JOB_KEYS:
            if key == "elapsed_s":
                out[key] = self.elapsed_s(now)
                continue
            value = getattr(self, key)
            out[key] = value.isoformat() if key in _TIMES and value is not None else value
        return out


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One update of a job, as recorded."""

    at: datetime
    received_at: datetime
    status: str
    message: str | None
    source: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "status": self.status,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class OrphanView:
    """An update that named no job we know."""

    correlation_id: str | None
    named_job_id: str | None
    at: datetime
    received_at: datetime
    status: str
    message: str | None
    source: str
    body: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "named_job_id": self.named_job_id,
            "at": self.at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "status": self.status,
            "message": self.message,
            "source": self.source,
            "body": dict(self.body),
        }
