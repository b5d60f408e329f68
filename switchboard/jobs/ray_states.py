"""Ray job states for the poller, from the Ray dashboard's REST API (`GET /api/jobs/{id}`).

The documented job API answers with Ray's JobDetails as JSON (`status`, `message`,
`error_type`, `start_time`/`end_time` in Unix ms, `driver_exit_code`), so the poller needs
neither Ray's package nor its client, and every request has its own timeout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from ..clock import utc_now
from ..secrets import redact_url
from . import statuses as st
from .job_states import JobState, StateSourceDown, UnknownJob
from .views import JobView

MAX_MESSAGE_CHARS = 4000  # Ray's failure message carries the end of the job's logs


class RayJobStates:
    """Asks one Ray cluster's dashboard (`address`, e.g. `http://ray-head:8265`) for job
    states; `auth_token` is sent as `Authorization: Bearer` (Ray's token authentication)."""

    name = st.SOURCE_RAY
    via = "ray"

    def __init__(self, address: str, *, auth_token: str = "", timeout_s: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self.where = redact_url(self.address)
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json"}
        if auth_token:
            self._headers["Authorization"] = f"Bearer {auth_token}"

    def external_id(self, job: JobView) -> str | None:
        return job.ray_submission_id

    def state(self, external_id: str) -> JobState | UnknownJob:
        url = f"{self.address}/api/jobs/{urllib.parse.quote(external_id, safe='')}"
        request = urllib.request.Request(url, headers=self._headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return UnknownJob(
                    f"Ray at {self.where} knows no job {external_id} (HTTP 404): it was lost "
                    "(a Ray head restarted without its job history?) and is not followed further"
                )
            if exc.code in (401, 403):
                raise StateSourceDown(
                    f"Ray at {self.where} refused our credentials (HTTP {exc.code}): "
                    "check RAY_AUTH_TOKEN"
                ) from None
            raise StateSourceDown(f"Ray at {self.where} answered HTTP {exc.code}") from None
        except (OSError, urllib.error.URLError) as exc:
            raise StateSourceDown(f"Ray at {self.where} unreachable: {exc}") from None
        try:
            details = json.loads(raw)
        except ValueError:
            raise StateSourceDown(f"Ray at {self.where} answered something not JSON") from None
        return ray_job_state(details)

    def close(self) -> None:
        """Nothing held: each request has a connection of its own."""


def ray_job_state(details: Any) -> JobState:
    """Our JobState of Ray's JobDetails JSON; StateSourceDown if it is not one."""
    if not isinstance(details, dict) or not isinstance(details.get("status"), str):
        raise StateSourceDown(f"Ray's answer has no job status: {str(details)[:200]}")
    status = st.ray_status(details["status"])
    if status is None:
        raise StateSourceDown(f"Ray's job status {details['status']!r} is not one we know")
    stamp = details.get("end_time") if st.is_terminal(status) else None
    stamp = stamp or details.get("start_time")
    return JobState(status, _from_unix_ms(stamp), ray_message(status, details))


def ray_message(status: str, details: dict[str, Any]) -> str | None:
    """Ray's message, with its `error_type` and, for a failure, the driver's exit code."""
    message = details.get("message") if isinstance(details.get("message"), str) else None
    if message and len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    notes = []
    if details.get("error_type"):
        notes.append(f"error_type {details['error_type']}")
    if status == st.FAILED and details.get("driver_exit_code") is not None:
        notes.append(f"driver exit code {details['driver_exit_code']}")
    text = " ".join(part for part in (message, f"[{'; '.join(notes)}]" if notes else "") if part)
    return text or None


def _from_unix_ms(stamp: Any) -> datetime:
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp > 0:
        return datetime.fromtimestamp(stamp / 1000, UTC)
    return utc_now()
