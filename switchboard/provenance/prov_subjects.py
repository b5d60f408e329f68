"""What `switchboard prov` documents: an event or a dataset's events, with jobs and manifests."""

from __future__ import annotations

from sqlalchemy import select

from .prov_document import ProvBuilder, firings
from .queries import ArchivedRow, archived_events


def _submitted(row: ArchivedRow) -> list[str]:
    found = row.outcome or {}
    jobs = [s["job_id"] for s in found.get("submissions", [])]
    jobs += [b["job_id"] for b in found.get("backfills", []) if b.get("job_id")]
    return jobs


def event_document(builder: ProvBuilder, message_id: str) -> bool:
    """An event, its evaluations, its jobs and any manifest it is a member of."""
    row = builder.event(message_id)
    if row is None:
        return False
    for job_id in _submitted(row):
        builder.job(job_id)
    for c in row.outcome.get("collections", []):
        query = select(firings.c.manifest_id).where(
            firings.c.rule == c["rule"], firings.c.key == c["key"]
        )
        for manifest_id in builder.connection.execute(query).scalars():
            if manifest_id:
                builder.manifest(manifest_id)
    return True


def dataset_document(builder: ProvBuilder, dataset_id: str, limit: int = 10_000) -> int:
    """Every archived event of the dataset (up to `limit`) with its evaluations and jobs."""
    count = 0
    for row in archived_events(builder.connection, dataset_id=dataset_id):
        event_document(builder, row.message_id)
        count += 1
        if count >= limit:
            break
    return count
