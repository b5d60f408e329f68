"""Applies a `collect:` decision in the batch's transaction and fires a collection exactly once.

Firing = the conditional open→fired update (the firing row's primary key makes it exactly once
across daemons), a manifest copied from the members, and ONE outbox submission per target whose
job id derives from (rule, target, key, generation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..jobids import job_id
from ..model import Event, Submission, SubmitRequest
from ..store.collection_tables import FIRED, OPEN
from ..store.progress import Progress
from .manifests import manifest_id, manifest_path, record_manifest
from .spec import Collected, RenderedCall, Until
from .totals import Totals

log = logging.getLogger(__name__)

MessageBuilder = Callable[[Event, Submission], tuple[Mapping[str, Any], Mapping[str, Any]]]
COLLECTION_RESOURCE = "collection"


@dataclass(frozen=True, slots=True)
class Firing:
    """What one firing queued (the submissions actually added to the outbox)."""

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
        self, uow: Any, group: Sequence[tuple[Event, Collected]], build: MessageBuilder
    ) -> tuple[list[Firing], list[tuple[str, str, str]]]:
        """Add the members one batch brings to ONE collection, in arrival order, firing when
        `until` holds; the firings and (rule, message id, error) for totals that failed.

        The collection is locked once and counted once per group (plus once per firing), so a
        batch costs one round trip per member rather than three.
        """
        rule, key, spec = group[0][1].rule, group[0][1].key, group[0][1].spec
        progress: Progress = uow.progress
        head = progress.lock(rule, key)
        generation, state, count = head.generation, head.state, head.count
        quiet = spec.until.quiet_for
        pending = 0
        expected: int | None = spec.until.count or len(group[0][1].all_of) or None
        last: tuple[Event, Collected] | None = None
        firings: list[Firing] = []
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
                lambda c=collected, g=generation: progress.has_all(rule, key, g, c.all_of),
            ):
                continue
            flush()
            firing = self.fire(uow, event, collected, generation, build)
            state = FIRED
            if firing is not None:
                firings.append(firing)
        flush()
        return firings, errors

    def fire(
        self,
        uow: Any,
        event: Event,
        collected: Collected,
        generation: int,
        build: MessageBuilder,
    ) -> Firing | None:
        """Fire (rule, key, generation) unless some transaction already did; None then."""
        rule, key = collected.rule, collected.key
        progress: Progress = uow.progress
        jobs = [_job_id(rule, r, key, generation) for r in collected.requests]
        mid = manifest_id(rule, key, generation)
        if not progress.mark_fired(
            rule, key, generation, manifest_id=mid, job_id=jobs[0] if jobs else None
        ):
            return None
        file_path = None
        if collected.spec.manifest_file:
            if self.manifest_dir:
                file_path = manifest_path(self.manifest_dir, mid)
            elif self.warn_without_manifest_dir and rule not in self._warned:
                self._warned.add(rule)
                log.warning(
                    "rule %s asks for a manifest file but SWITCHBOARD_MANIFEST_DIR is not set: "
                    "its firings carry the manifest id only",
                    rule,
                )
        manifest = record_manifest(
            uow.session, rule, key, generation, now=uow.now(), file_path=file_path
        )
        queued = []
        for request, jid in zip(collected.requests, jobs, strict=True):
            parameters: dict[str, Any] = dict(request.parameters)
            parameters.update(
                manifest_id=mid,
                collection=key,
                generation=generation,
                member_count=manifest.member_count,
            )
            if file_path is not None:
                parameters["file_paths"] = file_path
            submission = Submission(
                job_id=jid,
                rule=rule,
                extractor=request.extractor,
                resource_type=request.resource,
                resource_id=_resource_id(event, request),
                via=request.via,
                parameters=MappingProxyType(parameters),
                event_message_id=event.message_id,
                entrypoint=request.entrypoint,
                runtime_env=request.runtime_env,
            )
            body, properties = build(event, submission)
            if uow.add_submission(submission, body, properties):
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

    def _total(self, total: int | RenderedCall | None) -> int | None:
        if isinstance(total, RenderedCall):
            return self.totals.total(total)
        return total


def _job_id(rule: str, request: SubmitRequest, key: str, generation: int) -> str:
    return job_id(rule, request.extractor, COLLECTION_RESOURCE, key, str(generation))


def _resource_id(event: Event, request: SubmitRequest) -> str:
    if request.resource == "file":
        return event.file.id if event.file is not None else ""
    return event.dataset_id or ""


def trigger_of(event: Event, collected: Collected) -> dict[str, Any]:
    """What the sweeper needs to fire later without the event: the event and rendered targets.

    The event is kept as its original body text (`raw`), not as a re-encoded object: the
    sweeper parses exactly what arrived, however it was escaped (see `Sweeper`). Triggers armed
    by older versions hold `body` (an object) instead.
    """
    return {
        **_stored_body(event),
        "routing_key": event.routing_key,
        "properties": {
            k: v for k, v in event.properties.items() if k in ("reply_to", "correlation_id")
        },
        "total": collected.total if isinstance(collected.total, int) else None,
        "all_of": sorted(collected.all_of),
        "requests": [
            {
                "extractor": r.extractor,
                "resource": r.resource,
                "via": r.via,
                "parameters": dict(r.parameters),
                "entrypoint": r.entrypoint,
                "runtime_env": None if r.runtime_env is None else dict(r.runtime_env),
            }
            for r in collected.requests
        ],
    }


def _stored_body(event: Event) -> dict[str, Any]:
    """`{"raw": <body text>}`, or `{"body": <object>}` for an event built without its bytes."""
    try:
        raw = bytes(event.raw).decode("utf-8")
    except UnicodeDecodeError:  # parse_event refuses such bodies; a hand-made Event may not
        raw = ""
    return {"raw": raw} if raw else {"body": dict(event.body)}
