"""Submits outbox rows through Clowder's REST API, so Clowder records and tracks the job."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..clowder import clowder_job_id
from ..ports import OutboxRow, Sink
from ..settings import Settings

log = logging.getLogger(__name__)


class ExtractionSubmitter(Protocol):
    """What the sink needs of `clowder.ClowderClient`."""

    def submit_extraction(
        self, resource_type: str, resource_id: str, extractor: str, parameters: dict[str, Any]
    ) -> Any: ...


class ClowderApiSink(Sink):
    """Send `via: clowder-api` rows as Clowder extraction requests (implements `ports.Sink`).

    Raises ClowderUnavailable (retry later) or ClowderRejected (give up), as the client does.
    Clowder nests the parameters under `parameters`; extractors that need top-level keys such
    as `rulechecked` must be reached `via: amqp` instead. Clowder's own job id for the request
    (v1 `{"status": "OK", "job_id": …}`, v2 the id as a string) is logged beside ours and
    returned; the relay stores it with the job (`clowder_job_id`).
    """

    def __init__(self, client: ExtractionSubmitter) -> None:
        self.client = client

    def send(self, row: OutboxRow) -> str | None:
        """Submit the row; Clowder's job id for it, or None if Clowder's answer has none."""
        submission = row.submission
        answer = self.client.submit_extraction(
            submission.resource_type,
            submission.resource_id,
            submission.extractor,
            dict(submission.parameters),
        )
        clowder_job = clowder_job_id(answer)
        log.info(
            "job %s submitted to %s through Clowder's API: Clowder job %s",
            submission.job_id,
            submission.extractor,
            clowder_job or "(none in the answer)",
            extra={"job_id": submission.job_id, "clowder_job_id": clowder_job},
        )
        return clowder_job


def from_settings(settings: Settings, timeout_s: float) -> ClowderApiSink:
    """The `via: clowder-api` sink of `sink_registry`."""
    from ..clowder import ClowderClient

    client = ClowderClient(  # no retries of its own: the relay retries
        settings.clowder_url,
        settings.clowder_key,
        api_version=2 if settings.clowder_version == 2 else 1,
        timeout_s=timeout_s,
        retries=0,
    )
    return ClowderApiSink(client)
