"""The message router at intake: each delivery parsed into a typed message, each batch's
messages of one type handed to that type's handler, with the crash guard in front.

Parsing returns a typed message (an `Event` today); a new inbound kind of message is one
parser, one handler and one `Route`. Nothing is acknowledged here: the caller acks what the
`BatchResult` says was committed and dead-letters or delays the rest.

A delivery that comes back redelivered may have crashed the process (`os._exit`, a segfault,
the OOM killer); with a `CrashGuard` each such delivery is counted before it is parsed (parsing
is part of what may crash), processed alone, and dead-lettered once it has crashed the daemon
`max_crashes` times.

`parse_ahead` reads a delivery before its batch is complete (the source calls it while it
waits for the rest, see `parse_ahead`); suspects are never read ahead, since the crash
guard must count them first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from .errors import MalformedEvent
from .failures import delivery_fingerprint, describe_failure
from .model import Submission
from .parse_ahead import ParseAhead, Reading
from .ports import CrashGuard, Delivery

log = logging.getLogger(__name__)

M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)
M_contra = TypeVar("M_contra", contravariant=True)


@dataclass
class BatchResult:
    """What happened to each delivery of one batch."""

    committed: list[Delivery] = field(default_factory=list)
    duplicates: int = 0
    submissions: list[Submission] = field(default_factory=list)
    rule_errors: list[tuple[str, str, str]] = field(default_factory=list)
    malformed: list[tuple[Delivery, str]] = field(default_factory=list)
    delayed: list[tuple[Delivery, str]] = field(default_factory=list)
    poison: list[tuple[Delivery, str]] = field(default_factory=list)
    matched_rules: list[str] = field(default_factory=list)  # one rule name per matched event
    # vias of outbox rows queued beside `submissions` (forwarded status updates): the relay
    # threads woken after the batch are those of these vias and of the submissions'
    queued_vias: set[str] = field(default_factory=set)

    def vias(self) -> set[str]:
        """The vias of every outbox row the batch queued."""
        return {s.via for s in self.submissions} | self.queued_vias


@dataclass(frozen=True)
class Parsed(Generic[M_co]):
    """One delivery and the message parsed from it."""

    delivery: Delivery
    message: M_co


class Handler(Protocol[M_contra]):
    """Commits one batch's messages of one type into the result (the processor for events).

    `fingerprint` names a suspect's crash count, dropped in the transaction that commits it."""

    def handle(
        self,
        items: Sequence[Parsed[M_contra]],
        result: BatchResult,
        fingerprint: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Route(Generic[M]):
    """One kind of inbound message: which deliveries it takes, its parser and its handler.

    `parse` raises MalformedEvent (with a reason) for a delivery it cannot read."""

    parse: Callable[[Delivery], M]
    handler: Handler[M]
    accepts: Callable[[Delivery], bool] = lambda delivery: True


class Router:
    """Parse each delivery by the first route that accepts it, then hand each route's messages
    to its handler, in route order; see the module docstring."""

    def __init__(self, routes: Sequence[Route[Any]], crash_guard: CrashGuard | None = None):
        self.routes = list(routes)
        self.crash_guard = crash_guard
        self._ahead: ParseAhead[Reading] = ParseAhead(self._read)

    def parse_ahead(self, delivery: Delivery) -> None:
        """Route and parse `delivery` now, for the batch it will be in (suspects excepted)."""
        if self.crash_guard is not None and delivery.redelivered:
            return
        self._ahead.add(delivery)

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult:
        """Handle one batch; raises StoreError when the database is unreachable (retry later).

        Redelivered deliveries (with a crash guard) go first, each alone; the rest together.
        """
        result = BatchResult()
        guarded = self.crash_guard is not None
        for delivery in deliveries:
            if guarded and delivery.redelivered:
                self._process_suspect(delivery, result)
        self._dispatch([d for d in deliveries if not (guarded and d.redelivered)], result)
        self._ahead.next_batch()
        return result

    def _process_suspect(self, delivery: Delivery, result: BatchResult) -> None:
        """Count the attempt (committed first, so a crash cannot undo it), then either
        dead-letter a delivery that has crashed the daemon often enough or process it alone.

        The delivery that first came in was interrupted too (it is redelivered), so the count
        of crashes is the count of attempts recorded here, this one included.
        """
        guard = self.crash_guard
        assert guard is not None
        fingerprint = delivery_fingerprint(delivery)
        crashes = guard.record_attempt(fingerprint)
        if crashes >= guard.max_crashes:
            reason = f"crashed the daemon {crashes} times"
            log.error("dead-lettering a redelivered message that %s", reason)
            guard.forget(fingerprint)
            result.poison.append((delivery, reason))
            return
        committed = len(result.committed)
        self._dispatch([delivery], result, fingerprint)
        if len(result.committed) == committed:  # settled another way: it did not crash us
            guard.forget(fingerprint)

    def _dispatch(
        self, deliveries: Sequence[Delivery], result: BatchResult, fingerprint: str | None = None
    ) -> None:
        """Read the deliveries (or take their readings ahead), then hand each route the ones it
        parsed."""
        parsed: list[list[Parsed[Any]]] = [[] for _ in self.routes]
        for delivery in deliveries:
            reading = self._ahead.take(delivery)
            if reading.malformed is not None:
                result.malformed.append((delivery, reading.malformed))
            else:
                assert reading.route is not None  # a reading without a reason has its route
                parsed[reading.route].append(Parsed(delivery, reading.message))
        for route, items in zip(self.routes, parsed, strict=True):
            if items:
                route.handler.handle(items, result, fingerprint)

    def _read(self, delivery: Delivery) -> Reading:
        """The route that accepts `delivery` and its message; any exception parsing it makes
        it a malformed one."""
        index = next((i for i, r in enumerate(self.routes) if r.accepts(delivery)), None)
        if index is None:
            return Reading(None, None, "no handler for this kind of message")
        try:
            return Reading(index, self.routes[index].parse(delivery), None)
        except MalformedEvent as exc:
            return Reading(index, None, exc.reason)
        except Exception as exc:  # a bug in parsing must not stop the daemon: this one only
            reason = f"parsing failed: {describe_failure(exc)}"
            log.error("unparseable message (tag %s): %s", delivery.delivery_tag, reason)
            return Reading(index, None, reason)
