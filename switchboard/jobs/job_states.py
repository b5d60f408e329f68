"""The port the job poller reads job states through: a JobStateSource per system (Ray, Clowder).

Adapters: `ray_states.RayJobStates`, `clowder_states.ClowderJobStates`; a fake for tests and
rule authors: `switchboard.testing.FakeJobStates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..errors import SwitchboardError
from .views import JobView


class StateSourceDown(SwitchboardError):
    """The system cannot be asked right now (unreachable, 5xx, refused credentials): the
    poller backs off and asks again later."""


@dataclass(frozen=True, slots=True)
class JobState:
    """What the system says of one job now, in our vocabulary (`statuses.STATUSES`)."""

    status: str
    at: datetime  # the system's own time of this state (its start or end), aware
    message: str | None


@dataclass(frozen=True, slots=True)
class UnknownJob:
    """The system answered that it knows no such job (HTTP 404): `message` says so."""

    message: str


class JobStateSource(Protocol):
    """One system's job states. `name` is the timeline's source (`ray`, `clowder`); `via`
    the jobs it follows."""

    name: str
    via: str

    def external_id(self, job: JobView) -> str | None:
        """The id the system knows the job by (None: nothing to ask, e.g. no Clowder job id)."""
        ...

    def state(self, external_id: str) -> JobState | UnknownJob:
        """The job's state now; StateSourceDown when the system cannot answer."""
        ...

    def close(self) -> None:
        """Release connections; nothing by default."""
        ...
