"""Submits outbox rows through Clowder's REST API, so Clowder records and tracks the job."""

from __future__ import annotations

from typing import Protocol

from ..ports import OutboxRow


class ExtractionSubmitter(Protocol):
    """What the sink needs of `clowder.ClowderClient`."""

    def submit_extraction(
        self, resource_type: str, resource_id: str, extractor: str, parameters: dict
    ) -> dict: ...


class ClowderApiSink:
    """Send `via: clowder-api` rows as Clowder extraction requests (implements `ports.Sink`).

    Raises ClowderUnavailable (retry later) or ClowderRejected (give up), as the client does.
    Clowder nests the parameters under `parameters`; extractors that need top-level keys such
    as `rulechecked` must be reached `via: amqp` instead.
    """

    def __init__(self, client: ExtractionSubmitter) -> None:
        self.client = client

    def send(self, row: OutboxRow) -> None:
        submission = row.submission
        self.client.submit_extraction(
            submission.resource_type,
            submission.resource_id,
            submission.extractor,
            dict(submission.parameters),
        )
