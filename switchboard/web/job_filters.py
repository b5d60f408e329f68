"""What the jobs table and `/api/jobs` may be filtered by, and the reader port that answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from .queries import Page


@dataclass(frozen=True)
class JobFilter:
    """Empty strings filter nothing."""

    target: str = ""
    status: str = ""
    dataset: str = ""
    rule: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> JobFilter:
        return cls(
            target=query.get("target", "").strip(),
            status=query.get("status", "").strip().lower(),
            dataset=query.get("dataset", "").strip(),
            rule=query.get("rule", "").strip(),
        )

    def as_query(self) -> dict[str, str]:
        fields = {"target": self.target, "status": self.status, "dataset": self.dataset}
        fields["rule"] = self.rule
        return {name: value for name, value in fields.items() if value}


class JobsReader(Protocol):
    """Reads jobs shaped like `switchboard jobs --json` (keys job_id, rule, target, status, ...)."""

    source: str  # "jobs" (tracked jobs) or "outbox" (submissions only)

    def jobs(
        self, connection: Connection, where: JobFilter, page: Page, now: datetime
    ) -> tuple[list[dict[str, Any]], int]: ...

    def job(self, connection: Connection, job_id: str, now: datetime) -> dict[str, Any] | None:
        """The job with its `timeline` (a list of {at, received_at, status, message, source})."""
        ...

    def timelines(
        self, connection: Connection, job_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]: ...

    def targets(self, connection: Connection) -> list[str]: ...
