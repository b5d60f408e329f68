"""Switchboard's own error tree: adapters translate library errors (pika, SQLAlchemy) into these."""

from __future__ import annotations

from dataclasses import dataclass

from .locations import SourceLocation


class SwitchboardError(Exception):
    """Base of every error Switchboard raises on purpose."""


class SettingsError(SwitchboardError, ValueError):
    """An environment variable holds a value its setting cannot take; the message names it."""


class MalformedEvent(SwitchboardError):
    """A message that cannot be parsed into an Event; the daemon dead-letters it with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a rule file, located as `path:line`."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    @classmethod
    def at(cls, location: SourceLocation, reason: str) -> Problem:
        """The problem at `location` (a rule's `source`)."""
        return cls(location.path, location.line, reason)

    @property
    def location(self) -> SourceLocation:
        return SourceLocation(self.path, self.line)


class RuleLoadError(SwitchboardError):
    """Rule files were refused; `problems` lists every mistake found in one pass."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.reason))
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(SwitchboardError):
    """The state database failed; the batch in hand is rolled back and retried."""


class NotMigrated(StoreError):
    """The database schema is missing or older than this version of Switchboard."""


class BrokerError(SwitchboardError):
    """RabbitMQ failed or the connection was lost."""


class DeliveryFailed(SwitchboardError):
    """A published message was returned (unroutable) or nacked by the broker."""


class ClowderUnavailable(SwitchboardError):
    """Clowder's REST API timed out or answered 5xx; try again later."""


class SubmissionRejected(SwitchboardError):
    """The target refused the submission itself (bad request, spec or credentials); retrying
    will not help, so the relay marks the row failed at once."""


class ClowderRejected(SubmissionRejected):
    """Clowder's REST API answered 4xx; retrying will not help."""


class MessageNotEncodable(SubmissionRejected):
    """A row's message cannot be put on the wire (a queue name over 255 bytes, a body that is
    not JSON, a property AMQP cannot carry). Found before anything is sent, so it fails that
    row alone: the connection and the other rows of its batch are fine."""
