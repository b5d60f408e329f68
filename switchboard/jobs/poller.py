"""The job poller: asks Ray and Clowder v2 for the state of every job they run that has not
ended, and records each change in the job's timeline.

One daemon of several polls (a lease in the database); the others stand by and take over
when the holder stops renewing. A system that is down is asked again after a back-off that
doubles up to a cap, and its outage is logged once, when it starts, and once when it ends.
A job the system does not know (HTTP 404) gets one `failed` update saying so and is not asked
about again. Terminal jobs are never asked about, and `JobStore.record` never overrides one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..store.job_records import Update, update_key
from ..store.leases import Lease
from . import statuses as st
from .job_states import JobState, JobStateSource, StateSourceDown, UnknownJob
from .store import JobStore
from .views import JobView

log = logging.getLogger(__name__)

LEASE_NAME = "job-poller"
MAX_BACKOFF_S = 300.0
PAGE_SIZE = 500
# Non-terminal statuses in the order a job passes them: a poll never moves a job back
# (a batch job's own `processing` update is not undone by Ray's later `RUNNING`).
_PROGRESS = {st.SUBMITTED: 0, st.STARTED: 1, st.PROCESSING: 2, st.RESUBMITTED: 2}


@dataclass
class PollStats:
    """What one round did."""

    active: bool = True  # False: another daemon holds the lease
    asked: int = 0
    recorded: int = 0
    down: tuple[str, ...] = ()  # sources that could not be asked (or were backing off)


@dataclass
class _Outage:
    delay_s: float = 0.0
    retry_at: float = 0.0
    reason: str = ""


class JobPoller:
    """Polls `sources` for the jobs in `store`; `lease` (None: always active) makes it one
    for all daemons. Call `poll_once` every `interval_s` (PollerThread does)."""

    def __init__(
        self,
        store: JobStore,
        sources: Sequence[JobStateSource],
        lease: Lease | None,
        *,
        interval_s: float = 10.0,
        max_backoff_s: float = MAX_BACKOFF_S,
        page_size: int = PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.lease = lease
        self.interval_s = interval_s
        self.max_backoff_s = max(max_backoff_s, interval_s)
        self.page_size = page_size
        self.should_stop = should_stop
        self._monotonic = monotonic
        self._outages: dict[str, _Outage] = {}

    def poll_once(self) -> PollStats:
        """One round over every source not backing off; StoreError if the database is down."""
        if self.lease is not None and not self.lease.acquire():
            return PollStats(active=False)
        stats = PollStats()
        down: list[str] = []
        for source in self.sources:
            outage = self._outages.get(source.name)
            if outage is not None and self._monotonic() < outage.retry_at:
                down.append(source.name)
                continue
            try:
                self._poll(source, stats)
            except StateSourceDown as exc:
                self._went_down(source, exc)
                down.append(source.name)
                continue
            self._came_back(source)
        stats.down = tuple(down)
        return stats

    def close(self) -> None:
        """Close the sources and give the lease up, so another daemon takes over at once."""
        for source in self.sources:
            source.close()
        if self.lease is not None:
            self.lease.release()

    def _poll(self, source: JobStateSource, stats: PollStats) -> None:
        after: str | None = None
        answers: dict[str, JobState | UnknownJob] = {}  # jobs sharing one external id
        while not self.should_stop():
            page = self.store.non_terminal(source.via, limit=self.page_size, after=after)
            for job in page:
                if self.should_stop():
                    return
                external = source.external_id(job)
                if not external:
                    continue
                if external not in answers:
                    answers[external] = source.state(external)
                    stats.asked += 1
                update = self._update(source, job, answers[external])
                if update is not None and self.store.record(job.job_id, update).recorded:
                    stats.recorded += 1
            if len(page) < self.page_size:
                return
            after = page[-1].job_id
            if self.lease is not None and not self.lease.acquire():
                return  # lost it while polling (a very long round): the new holder goes on

    def _update(
        self, source: JobStateSource, job: JobView, answer: JobState | UnknownJob
    ) -> Update | None:
        """The timeline update for this answer, or None if it would tell nothing new (the
        job already stands so: a steady round writes nothing) or move the job back."""
        if isinstance(answer, UnknownJob):
            key = update_key(source.name, job.job_id, "unknown")
            return Update(key, st.FAILED, self.store.clock(), answer.message, source.name)
        if (job.status, job.latest_message) == (answer.status, answer.message):
            return None
        ahead = _PROGRESS.get(job.status)
        behind = _PROGRESS.get(answer.status)
        if ahead is not None and behind is not None and behind < ahead:
            return None
        key = update_key(source.name, job.job_id, answer.status, answer.message)
        return Update(key, answer.status, answer.at, answer.message, source.name)

    def _went_down(self, source: JobStateSource, exc: StateSourceDown) -> None:
        outage = self._outages.get(source.name)
        first = outage is None
        if outage is None:
            outage = self._outages[source.name] = _Outage(reason=str(exc))
        outage.delay_s = min(self.max_backoff_s, outage.delay_s * 2 or self.interval_s)
        outage.retry_at = self._monotonic() + outage.delay_s
        if first:
            log.warning(
                "job poller: %s; polling %s jobs backs off (%.0f s, doubling up to %.0f s) "
                "until it answers",
                exc,
                source.name,
                outage.delay_s,
                self.max_backoff_s,
            )
        else:
            log.debug(
                "job poller: %s still down (%s); next try in %.0f s",
                source.name,
                exc,
                outage.delay_s,
            )

    def _came_back(self, source: JobStateSource) -> None:
        outage = self._outages.pop(source.name, None)
        if outage is not None:
            log.info("job poller: %s answers again; polling its jobs resumed", source.name)
