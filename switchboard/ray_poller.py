"""Polls Ray for the state of every unfinished `via: ray` job into its timeline (source `ray`).

Ray's `PENDING` with its reason (`waiting for resources ...`), `RUNNING`, and the end
(`SUCCEEDED`, `FAILED` with its error type and exit code, `STOPPED`) become timeline rows, each
recorded once (its key is Ray's status and message), so several daemons polling the same jobs
add nothing twice. It runs in a thread of its own: a slow or unreachable Ray never holds up
event intake; while Ray is down it backs off (doubling, up to MAX_BACKOFF_S).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from .clock import utc_now
from .jobs import statuses as st
from .ports import Clock
from .store.job_records import Update, find_job, record_update, update_key
from .store.job_tables import jobs

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0
BATCH = 200  # jobs asked about per round (oldest update first)
# Ray's RUNNING says less than the runner's own updates: it never moves a job back from them.
_AHEAD_OF_STARTED = frozenset({st.STARTED, st.PROCESSING, st.RESUBMITTED})


def ray_update(job_id: str, info: Any, at: Any) -> Update | None:
    """The timeline update for Ray's JobInfo of a job; None for a status we do not know."""
    word = str(getattr(info.status, "value", info.status))
    status = st.ray_status(word)
    if status is None:
        return None
    parts = [info.message or ""]
    if getattr(info, "error_type", None):
        parts.append(f"error type {info.error_type}")
    if getattr(info, "driver_exit_code", None) not in (None, 0):
        parts.append(f"exit code {info.driver_exit_code}")
    message = "; ".join(p for p in parts if p) or None
    return Update(update_key("ray", job_id, word, message), status, at, message, st.SOURCE_RAY)


class RayJobPoller:
    """Asks Ray (through `client()`, a JobSubmissionClient) about unfinished Ray jobs."""

    def __init__(
        self,
        engine: Engine,
        client: Callable[[], Any],
        *,
        interval_s: float = 5.0,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.client = client
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """One round: the number of timeline rows it added. Raises what Ray raises."""
        query = (
            select(jobs.c.job_id, jobs.c.ray_submission_id)
            .where(jobs.c.via == "ray", jobs.c.status.not_in([*st.TERMINAL, st.PENDING]))
            .order_by(jobs.c.updated_at)
            .limit(BATCH)
        )
        with self.engine.connect() as connection:
            wanted = list(connection.execute(query))
        client = self.client()
        added = 0
        for job_id, submission_id in wanted:
            info = client.get_job_info(submission_id or job_id)
            now = self.clock()
            update = ray_update(job_id, info, now)
            if update is None:
                continue
            with self.engine.begin() as connection:
                job = find_job(connection, job_id=job_id)
                if job is None or not self._news(job.status, update.status):
                    continue
                added += record_update(connection, job_id, update, now, job=job).recorded
        return added

    @staticmethod
    def _news(current: str, reported: str) -> bool:
        """Whether Ray's word adds to what the job says (never a step back)."""
        if reported == st.SUBMITTED:
            return current == st.SUBMITTED
        if reported == st.STARTED:
            return current not in _AHEAD_OF_STARTED
        return True

    def ensure_started(self) -> None:
        """Start the polling thread unless it runs (a periodic hook: it starts with the loop)."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="ray-job-poller", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        delay_s = self.interval_s
        while not self._stop.wait(delay_s):
            try:
                self.poll_once()
                delay_s = self.interval_s
            except Exception as exc:  # Ray down, a refused token, the database away: next round
                delay_s = min(max(delay_s, self.interval_s) * 2, MAX_BACKOFF_S)
                log.warning("polling Ray's jobs failed (%s); again in %.0f s", exc, delay_s)
