"""Clowder v2 job states for the poller, from `GET /api/v2/jobs/{id}/summary`.

Only Clowder v2 has a job API; REST submissions (`via: clowder-api`) keep Clowder's job id as
`clowder_job_id`, and that is what is asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from ..clock import utc_now
from ..errors import ClowderRejected, ClowderUnavailable
from . import statuses as st
from .job_states import JobState, StateSourceDown, UnknownJob
from .views import JobView

CLOWDER_API_VIA = "clowder-api"


class JobSummaries(Protocol):
    """What the adapter needs of `clowder.ClowderClient` (api_version=2)."""

    base_url: str

    def job_summary(self, job_id: str) -> dict[str, Any]: ...


class ClowderJobStates:
    """Asks Clowder v2 for the state of the jobs it issued for our REST submissions."""

    name = st.SOURCE_CLOWDER
    via = CLOWDER_API_VIA

    def __init__(self, client: JobSummaries) -> None:
        self.client = client

    def external_id(self, job: JobView) -> str | None:
        return job.clowder_job_id

    def state(self, external_id: str) -> JobState | UnknownJob:
        where = self.client.base_url
        try:
            summary = self.client.job_summary(external_id)
        except ClowderUnavailable as exc:
            raise StateSourceDown(f"Clowder at {where}: {exc}") from None
        except ClowderRejected as exc:
            if getattr(exc, "status", None) == 404:
                return UnknownJob(
                    f"Clowder at {where} knows no job {external_id} (HTTP 404); "
                    "it is not followed further"
                )
            raise StateSourceDown(f"Clowder at {where}: {exc}") from None
        return clowder_job_state(summary)

    def close(self) -> None:
        """Nothing held: the client opens a connection per request."""


def clowder_job_state(summary: dict[str, Any]) -> JobState:
    """Our JobState of a Clowder v2 job summary; StateSourceDown if it has no known status."""
    word = summary.get("status")
    status = clowder_status_word(word)
    if status is None:
        raise StateSourceDown(f"Clowder's job status {word!r} is not one we know")
    order: tuple[str, ...] = ("updated", "started", "created")
    if st.is_terminal(status):
        order = ("finished", *order)
    at = next((t for t in map(_time, (summary.get(key) for key in order)) if t), None)
    message = summary.get("latest_message")
    return JobState(status, at or utc_now(), message if isinstance(message, str) else None)


def clowder_status_word(word: Any) -> str | None:
    """Our status of Clowder's word (its enum may be spelled `EventListenerJobStatus.X`)."""
    if not isinstance(word, str):
        return None
    return st.clowder_job_status(word.rpartition(".")[2])


def _time(value: Any) -> datetime | None:
    """Clowder's ISO 8601 time (Mongo's, without an offset: UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
