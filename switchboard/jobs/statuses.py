"""The job status vocabulary, and how pyclowder's, Clowder v2's and Ray's words map onto it.

Statuses are lowercase. `pending` (in the outbox) and `submitted` (the broker, Clowder or Ray
took it) are ours; `started`, `processing` and `resubmitted` come from the job itself; the
terminal ones are never overridden by a later update (pyclowder sends `skip` then `done` for a
message `check_message` ignores: the job stays `skipped`).
"""

from __future__ import annotations

from collections.abc import Mapping

PENDING = "pending"
SUBMITTED = "submitted"
STARTED = "started"
PROCESSING = "processing"
RESUBMITTED = "resubmitted"
SUCCEEDED = "succeeded"
SKIPPED = "skipped"
FAILED = "failed"
STOPPED = "stopped"

STATUSES = (
    PENDING,
    SUBMITTED,
    STARTED,
    PROCESSING,
    RESUBMITTED,
    SUCCEEDED,
    SKIPPED,
    FAILED,
    STOPPED,
)
TERMINAL = frozenset({SUCCEEDED, SKIPPED, FAILED, STOPPED})

# Where a timeline row came from.
SOURCE_RELAY = "relay"  # our outbox: submitted, or failed for good
SOURCE_EXTRACTOR = "extractor"  # a pyclowder status update on our status queue
SOURCE_CLOWDER = "clowder"  # Clowder v2's job API (the poller)
SOURCE_RAY = "ray"  # Ray's job API (the poller)
SOURCE_OPERATOR = "operator"  # `switchboard retry` / `resubmit` (rule controls)
SOURCES = (SOURCE_RELAY, SOURCE_EXTRACTOR, SOURCE_CLOWDER, SOURCE_RAY, SOURCE_OPERATOR)

# Clowder v2's EventListenerJobStatus words past submission: what the job summary says
# (GET /api/v2/jobs/{id}/summary) and what an extractor may put on the wire.
CLOWDER_V2_WORDS: Mapping[str, str] = {
    "STARTED": STARTED,
    "PROCESSING": PROCESSING,
    "SUCCEEDED": SUCCEEDED,
    "SKIPPED": SKIPPED,
    "ERROR": FAILED,
    "RESUBMITTED": RESUBMITTED,
}

# pyclowder 3.0.8 puts `StatusMessage.<name>` on the wire; Clowder v2 also accepts its words.
EXTRACTOR_WORDS: Mapping[str, str] = {
    "StatusMessage.start": STARTED,
    "StatusMessage.processing": PROCESSING,
    "StatusMessage.done": SUCCEEDED,
    "StatusMessage.skip": SKIPPED,
    "StatusMessage.error": FAILED,
    "StatusMessage.retry": RESUBMITTED,
    **CLOWDER_V2_WORDS,
}

# Clowder v2's whole EventListenerJobStatus, as the job summary reports it.
CLOWDER_JOB_WORDS: Mapping[str, str] = {
    "CREATED": SUBMITTED,
    "SUBMITTED": SUBMITTED,
    **CLOWDER_V2_WORDS,
}

# Ray's JobStatus (JobSubmissionClient.get_job_info(id).status).
RAY_WORDS: Mapping[str, str] = {
    "PENDING": SUBMITTED,
    "RUNNING": STARTED,
    "STOPPED": STOPPED,
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
}


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def extractor_status(status_field: str, message_type: object = None) -> tuple[str, str] | None:
    """(status, message) of a pyclowder `status` field such as `StatusMessage.start: Started
    processing.` (or `STARTED: ...`); None if neither it nor `message_type` names a status.

    The word before the first `: ` is the status; the rest is the message.
    """
    word, separator, rest = status_field.partition(":")
    status = EXTRACTOR_WORDS.get(word.strip())
    if status is not None:
        return status, rest.strip() if separator else ""
    if isinstance(message_type, str) and message_type.strip() in EXTRACTOR_WORDS:
        return EXTRACTOR_WORDS[message_type.strip()], status_field.strip()
    return None


def clowder_job_status(word: str) -> str | None:
    """Our status for a Clowder v2 job status word; None if unknown."""
    return CLOWDER_JOB_WORDS.get(word.strip().upper())


def ray_status(word: str) -> str | None:
    """Our status for a Ray JobStatus (its name, any case); None if unknown."""
    return RAY_WORDS.get(word.strip().upper().removeprefix("JOBSTATUS."))
