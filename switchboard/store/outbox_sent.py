"""Marking outbox rows sent, fenced by their claim, with their stored bodies scrubbed of secrets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from ..secrets import without_secrets
from .engine import to_json
from .models import PENDING, SENT
from .statements import submissions


def held(job_id: str, claim_token: str | None) -> list[Any]:
    """The WHERE clauses of an outcome update: pending, and under `claim_token` if given."""
    clauses = [submissions.c.job_id == job_id, submissions.c.status == PENDING]
    if claim_token is not None:
        clauses.append(submissions.c.claim_token == claim_token)
    return clauses


def mark_sent(
    connection: Connection,
    bodies: Sequence[tuple[str, Any]],
    claim_token: str | None,
    now: datetime,
) -> set[str]:
    """Mark the pending rows of `bodies` (held under `claim_token`, if given) sent and scrub
    their stored bodies; the job ids marked.

    On PostgreSQL one `UPDATE ... FROM unnest(ids, bodies)` does both, with two array
    parameters (each row written once); SQLite scrubs in a second statement.
    """
    if not bodies:
        return set()
    if connection.dialect.name == "postgresql":
        parameters = {
            "ids": [job_id for job_id, _ in bodies],
            "bodies": [_scrubbed_json(b) for _, b in bodies],
            "now": now,
            "sent": SENT,
            "pending": PENDING,
            "token": claim_token,
        }
        text = _MARK_SENT if claim_token is not None else _MARK_SENT_UNFENCED
        return set(connection.exec_driver_sql(text, parameters).scalars())
    fence = [submissions.c.status == PENDING]
    if claim_token is not None:
        fence.append(submissions.c.claim_token == claim_token)
    sent = {
        "status": SENT,
        "sent_at": now,
        "attempts": submissions.c.attempts + 1,
        "claimed_until": None,
    }
    job_ids = [job_id for job_id, _ in bodies]
    statement = (
        update(submissions)
        .where(submissions.c.job_id.in_(job_ids), *fence)
        .values(**sent)
        .returning(submissions.c.job_id)
    )
    marked = set(connection.execute(statement).scalars())
    scrub_bodies(connection, [(job_id, body) for job_id, body in bodies if job_id in marked])
    return marked


# PostgreSQL: one UPDATE ... FROM unnest(ids, bodies), the arrays bound in binary (psycopg's
# text format escapes every JSON body with a regular expression)
_MARK_SENT_TEMPLATE = """
UPDATE submissions
SET status = %(sent)s, sent_at = %(now)s, attempts = submissions.attempts + 1,
    claimed_until = NULL, body = coalesce(scrubbed.body::json, submissions.body)
FROM unnest(%(ids)b::varchar[], %(bodies)b::text[]) AS scrubbed(job_id, body)
WHERE submissions.job_id = scrubbed.job_id AND submissions.status = %(pending)s{fence}
RETURNING submissions.job_id
"""
_MARK_SENT = _MARK_SENT_TEMPLATE.format(fence=" AND submissions.claim_token = %(token)s")
_MARK_SENT_UNFENCED = _MARK_SENT_TEMPLATE.format(fence="")


def _scrubbed_json(body: Any) -> str | None:
    """The body without its secrets as JSON text, or None if it had none (kept as it is)."""
    scrubbed = without_secrets(body)
    return None if scrubbed == body else to_json(scrubbed)


def scrub_bodies(connection: Connection, bodies: Sequence[tuple[str, Any]]) -> None:
    """Store each body without its secrets (only those that had any)."""
    changed = []
    for job_id, body in bodies:
        scrubbed = without_secrets(body)
        if scrubbed != body:
            changed.append({"b_job_id": job_id, "b_body": scrubbed})
    if changed:
        statement = (
            update(submissions)
            .where(submissions.c.job_id == bindparam("b_job_id"))
            .values(body=bindparam("b_body"))
        )
        connection.execute(statement, changed)
