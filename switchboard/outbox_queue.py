"""The submissions one transaction queues, per-event and fired alike, on their way to the outbox."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .model import Event, Submission
from .ports import OutboxEntry, UnitOfWork

MessageBuilder = Callable[[Event, Submission], tuple[Mapping[str, Any], Mapping[str, Any]]]


class OutboxQueue:
    """Collects submissions with their messages (built as each is queued, so a message that
    cannot be built fails its event), then adds them all in one `add_submissions` statement,
    in the order they were queued."""

    def __init__(self, build: MessageBuilder) -> None:
        self.build = build
        self._entries: list[OutboxEntry] = []

    def add(self, event: Event, submission: Submission) -> None:
        self._entries.append((submission, *self.build(event, submission)))

    def flush(self, uow: UnitOfWork) -> list[Submission]:
        """Add the queued submissions to the outbox; those that went in, each once."""
        entries, self._entries = self._entries, []
        if not entries:
            return []
        added = uow.add_submissions(entries)
        queued = []
        for submission, _, _ in entries:
            if submission.job_id in added:
                added.discard(submission.job_id)
                queued.append(submission)
        return queued
