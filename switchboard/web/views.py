"""What each page and API answer holds, read from the database and the live process."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from .job_filters import JobFilter, JobsReader
from .live import Live, version
from .queries import (
    Page,
    collection_items,
    failed_submissions,
    listing,
    open_collections,
    outbox_summary,
    submissions_per_rule,
)
from .queue_depths import QueueDepths

JOBS_ON_PAGE = 200  # jobs read for the grouped table (newest first)
JOB_STATUSES = (
    "pending",
    "submitted",
    "started",
    "processing",
    "resubmitted",
    "succeeded",
    "skipped",
    "failed",
    "stopped",
)


@dataclass
class Views:
    """Builds the answers; every method takes an open read connection."""

    live: Live
    jobs: JobsReader
    database: str  # the redacted URL, for the header
    depths: QueueDepths | None
    clock: Callable[[], datetime]

    def header(self, connection: Connection) -> dict[str, Any]:
        now = self.clock()
        outbox = outbox_summary(connection)
        opened = open_collections(connection)
        ruleset = self.live.ruleset()
        return {
            "version": version(),
            "python": platform.python_version(),
            "queue": self.live.queue,
            "daemon": self.live.daemon,
            "database": self.database,
            "now": now.isoformat(),
            "started_at": self.live.started_at.isoformat(),
            "uptime_s": round((now - self.live.started_at).total_seconds(), 1),
            "lag_s": round(outbox.oldest_pending_age_s(now), 1),
            "outbox": outbox.counts,
            "open_collections": opened.count,
            "rules": None if ruleset is None else len(ruleset),
            "rule_version": self.live.rule_version(),
            "jobs_source": self.jobs.source,
        }

    def collections(self, connection: Connection, page: Page) -> dict[str, Any]:
        items, total = collection_items(connection, page)
        return listing(items, total, page)

    def job_list(self, connection: Connection, where: JobFilter, page: Page) -> dict[str, Any]:
        items, total = self.jobs.jobs(connection, where, page, self.clock())
        return {**listing(items, total, page), "source": self.jobs.source}

    def job(self, connection: Connection, job_id: str) -> dict[str, Any] | None:
        return self.jobs.job(connection, job_id, self.clock())

    def job_groups(self, connection: Connection, where: JobFilter) -> dict[str, Any]:
        """Jobs grouped by target as in background 002: the latest job first, then the rest,
        each with its timeline (one query for all of them)."""
        items, total = self.jobs.jobs(connection, where, Page(0, JOBS_ON_PAGE), self.clock())
        timelines = self.jobs.timelines(connection, [job["job_id"] for job in items])
        groups: dict[str, list[dict[str, Any]]] = {}
        for job in items:
            groups.setdefault(job["target"], []).append(
                {**job, "timeline": timelines.get(job["job_id"], [])}
            )
        return {
            "groups": [{"target": t, "latest": js[0], "jobs": js} for t, js in groups.items()],
            "shown": len(items),
            "total": total,
            "targets": self.jobs.targets(connection),
            "statuses": JOB_STATUSES,
            "filter": where,
        }

    def rules(self, connection: Connection, page: Page) -> dict[str, Any]:
        stored = submissions_per_rule(connection)
        ruleset = self.live.ruleset()
        items: list[dict[str, Any]] = []
        names: list[str] = []
        for r in ruleset or ():
            names.append(r.name)
            items.append(
                {
                    "name": r.name,
                    "kind": r.kind,
                    "enabled": r.enabled,
                    "targets": list(r.targets),
                    "source": str(r.source),
                    **self._counts(r.name, stored),
                }
            )
        for name in sorted(set(stored) - set(names)):  # rules seen in the outbox, not loaded here
            items.append(
                {"name": name, "kind": None, "enabled": None, "targets": [], "source": None}
                | self._counts(name, stored)
            )
        shown = items[page.offset : page.offset + page.limit]
        return {**listing(shown, len(items), page), "version": self.live.rule_version()}

    def _counts(self, rule: str, stored: dict[str, dict[str, int]]) -> dict[str, Any]:
        counts = self.live.rule_counts(rule)
        kept = stored.get(rule, {})
        return {
            "matches": counts.matches,
            "errors": counts.errors,
            "timeouts": counts.timeouts,
            "submissions": kept.get("submissions", 0),
            "failed_submissions": kept.get("failed", 0),
        }

    def dead_letters(self, connection: Connection, page: Page) -> dict[str, Any]:
        """Failed submissions (from the database) and dead letters counted since start."""
        items, total = failed_submissions(connection, page)
        return {
            **listing(items, total, page),
            "dead_letters_since_start": dict(self.live.dead_letters_since_start()),
        }

    def queues(self) -> dict[str, Any] | None:
        """The dead-letter and retry queues' depths, asked of RabbitMQ (never inside a database
        transaction: on SQLite a read holds the write lock)."""
        depths = self.depths.depths() if self.depths is not None else None
        if depths is None:
            return None
        return {
            "error_queue": depths.error_queue,
            "error_messages": depths.error,
            "retry_queue": depths.retry_queue,
            "retry_messages": depths.retry,
            "problem": depths.problem,
        }

    def manifest(
        self, connection: Connection, manifest_id: str, page: Page
    ) -> dict[str, Any] | None:
        """One firing's manifest with a page of its sorted members."""
        from sqlalchemy import select

        from ..store.manifests import load_manifest, manifest_members
        from .queries import iso

        found = load_manifest(connection, manifest_id)
        if found is None:
            return None
        m = manifest_members
        query = (
            select(m.c.member, m.c.data)
            .where(m.c.manifest_id == manifest_id)
            .order_by(m.c.member)
            .offset(page.offset)
            .limit(page.limit)
        )
        items = [{"member": row.member, "data": row.data} for row in connection.execute(query)]
        return {
            **listing(items, found.member_count, page),
            "id": found.id,
            "rule": found.rule,
            "key": found.key,
            "generation": found.generation,
            "member_count": found.member_count,
            "created_at": iso(found.created_at),
            "file_path": found.file_path,
        }
