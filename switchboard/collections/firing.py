"""Applies a `collect:` decision in the batch's transaction and fires a collection exactly once.

Firing = the conditional open→fired update (the firing row's primary key makes it exactly once
across daemons), a manifest copied from the members, and ONE outbox submission per target whose
job id derives from (rule, target, key, generation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..model import Event, Submission
from ..outbox_queue import OutboxQueue
from ..ports import UnitOfWork
from ..rules.collect import Collected, RenderedCall, Until
from ..submissions import collection_job_id, submission_for
from .manifests import manifest_id, manifest_path
from .state import FIRED, OPEN
from .totals import Totals
from .triggers import trigger_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Firing:
    """What one firing queued (its submissions, on their way to the outbox)."""

    rule: str
    key: str
    generation: int
    manifest_id: str
    submissions: tuple[Submission, ...]


def holds(until: Until, count: int, total: int | None, has_all: Callable[[], bool]) -> bool:
    """Whether every condition but the quiet period holds (the sweeper checks that one)."""
    if until.count is not None and count < until.count:
        return False
    if until.min_count is not None and count < until.min_count:
        return False
    if until.fraction_of is not None and (not total or count / total < until.at_least):
        return False
    return not (until.all_of and (count < len(until.all_of) or not has_all()))


class Collector:
    """Adds members and fires; one per processor (it caches callable totals briefly)."""

    def __init__(
        self,
        manifest_dir: str = "",
        totals: Totals | None = None,
        *,
        warn_without_manifest_dir: bool = True,
    ) -> None:
        self.manifest_dir = manifest_dir
        self.totals = totals or Totals()
        self.warn_without_manifest_dir = warn_without_manifest_dir  # replay sends nothing
        self._warned: set[str] = set()

    def apply(
        self, uow: UnitOfWork, group: Sequence[tuple[Event, Collected]], queue: OutboxQueue
    ) -> list[tuple[str, str, str]]:
        """Add the members one batch brings to ONE collection, in arrival order, firing when
        `until` holds; (rule, message id, error) for totals that failed.

        The collection is locked once and counted once per group (plus once per firing), so a
        batch costs one round trip per member rather than three. (Longer than 60 lines: one
        loop keeps the locked collection's generation, state and count in step; split up, the
        parts would pass all of them back and forth.)
        """
        rule, key, spec = group[0][1].rule, group[0][1].key, group[0][1].spec
        progress = uow.progress
        head = progress.lock(rule, key)
        generation, state, count = head.generation, head.state, head.count
        quiet = spec.until.quiet_for
        pending = 0
        expected: int | None = spec.until.count or len(group[0][1].all_of) or None
        last: tuple[Event, Collected] | None = None
        errors: list[tuple[str, str, str]] = []

        def flush() -> None:
            nonlocal pending
            if pending or (last is not None and quiet is not None and state == OPEN):
                trigger = trigger_of(*last) if last is not None and quiet is not None else None
                progress.bump(
                    rule,
                    key,
                    pending,
                    quiet_for=quiet if state == OPEN else None,
                    trigger=trigger,
                    expected=expected,
                )
            pending = 0

        for event, collected in group:
            if state != OPEN:
                if spec.after_fire == "ignore":
                    continue
                generation, state, count = progress.reset(rule, key), OPEN, 0
            if progress.insert_member(rule, key, generation, collected.member, collected.data):
                pending += 1
                count += 1
                last = (event, collected)
            try:
                total = self._total(collected.total)
            except Exception as exc:  # the rule's callable: its error, the member still counts
                errors.append((rule, event.message_id, f"collect: {type(exc).__name__}: {exc}"))
                continue
            if total is not None:
                expected = total
            if quiet is not None or not holds(
                spec.until,
                count,
                total,
                partial(progress.has_all, rule, key, generation, collected.all_of),
            ):
                continue
            flush()
            self.fire(uow, event, collected, generation, queue)
            state = FIRED
        flush()
        return errors

    def fire(
        self,
        uow: UnitOfWork,
        event: Event,
        collected: Collected,
        generation: int,
        queue: OutboxQueue,
    ) -> Firing | None:
        """Fire (rule, key, generation) unless some transaction already did; None then.

        Its submissions go into `queue` (the caller flushes it into the outbox)."""
        rule, key = collected.rule, collected.key
        mid = manifest_id(rule, key, generation)
        file_path = self._file_path(rule, mid) if collected.spec.manifest_file else None
        requests = collected.requests
        first_job = collection_job_id(rule, requests[0], key, generation) if requests else None
        if not uow.progress.mark_fired(rule, key, generation, manifest_id=mid, job_id=first_job):
            return None
        manifest = uow.record_manifest(rule, key, generation, file_path=file_path)
        queued = []
        for request in requests:
            parameters: dict[str, Any] = dict(request.parameters)
            parameters.update(
                manifest_id=mid,
                collection=key,
                generation=generation,
                member_count=manifest.member_count,
            )
            if file_path is not None:
                parameters["file_paths"] = file_path
            submission = submission_for(
                rule, request, event, collection=(key, generation), parameters=parameters
            )
            queue.add(event, submission)
            queued.append(submission)
        log.info(
            "collection %s %r generation %d fired with %d members (manifest %s)",
            rule,
            key,
            generation,
            manifest.member_count,
            mid,
        )
        return Firing(rule, key, generation, mid, tuple(queued))

    def _file_path(self, rule: str, mid: str) -> str | None:
        """Where the firing's manifest file goes; None (warned once per rule) without a folder."""
        if self.manifest_dir:
            return manifest_path(self.manifest_dir, mid)
        if self.warn_without_manifest_dir and rule not in self._warned:
            self._warned.add(rule)
            log.warning(
                "rule %s asks for a manifest file but SWITCHBOARD_MANIFEST_DIR is not set: "
                "its firings carry the manifest id only",
                rule,
            )
        return None

    def _total(self, total: int | RenderedCall | None) -> int | None:
        if isinstance(total, RenderedCall):
            return self.totals.total(total)
        return total
