"""What the processor calls to archive a batch's events in that batch's transaction (a port)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..model import DatasetView, Event
from ..ports import UnitOfWork
from ..rules.collect import Collected

if TYPE_CHECKING:
    from ..engine import CollectingEvaluation
    from ..intake import BatchResult


class ArchiveHook(Protocol):
    """Records each fresh event of a batch with its outcome, inside the batch's transaction."""

    def prepare(self, events: Sequence[Event]) -> None:
        """Do now what `record` will need of these events alone (the processor calls it while
        the database works on the batch's first statements); `record` must not rely on it."""
        ...

    def record(
        self,
        uow: UnitOfWork,
        fresh: Sequence[tuple[Event, DatasetView]],
        evaluations: Sequence[CollectingEvaluation],
        collects: Sequence[tuple[Event, Collected]],
        result: BatchResult,
    ) -> None: ...
