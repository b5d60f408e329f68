"""The jobs' store port: one transaction per call, for the poller, the CLI and metrics.

The write path of intake and relay uses `records` on their own transactions instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from ..clock import utc_now
from ..store import job_records as records
from ..store.engine import redacted
from ..store.errors import store_errors
from ..store.job_records import Outcome, Update
from . import queries
from .queries import JobFilter
from .views import JobView, OrphanView, TimelineEntry


class JobStore:
    """Jobs in the state database (SQLite or PostgreSQL); StoreError when it is unreachable."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self._where = redacted(engine.url)

    def record(self, job_id: str, update: Update) -> Outcome:
        """Record one update of a known job (a poller's: `source` ray or clowder), received
        now; a duplicate key or an ended job changes nothing (see `records.record_update`)."""
        with store_errors(self._where), self.engine.begin() as connection:
            return records.record_update(connection, job_id, update, self.clock())

    def non_terminal(
        self, via: str, *, limit: int = 500, after: str | None = None
    ) -> list[JobView]:
        """Submitted jobs of `via` that have not ended, in job id order (page with `after`)."""
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.non_terminal_jobs(connection, via, limit=limit, after=after)

    def jobs(self, which: JobFilter | None = None) -> list[JobView]:
        """Jobs newest first, as `which` filters them (the latest 50 of any kind)."""
        which = which or JobFilter()
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.list_jobs(connection, which)

    def job(self, job_id: str) -> JobView | None:
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.get_job(connection, job_id)

    def timeline(self, job_id: str) -> list[TimelineEntry]:
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.timeline(connection, job_id)

    def orphans(self, limit: int = 50) -> list[OrphanView]:
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.orphans(connection, limit)

    def counts(self) -> dict[tuple[str, str], int]:
        """(target, status) -> jobs."""
        with store_errors(self._where), self.engine.connect() as connection:
            return queries.counts(connection)
