"""A pool of `concurrency` actors that runs every batch once, retrying a dead actor's batch."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .members import Member
from .spec import BatchSpec
from .worker import BatchWorker, Record

log = logging.getLogger(__name__)

# Calls in flight per actor: the next batch is queued on the actor while one runs, so the
# actor never waits for the driver between batches.
IN_FLIGHT_PER_ACTOR = 2
WAIT_WARNING_S = 30.0


class ProcessorLoadError(RuntimeError):
    """The processor could not be loaded in an actor (import error, `__init__` raised)."""


@dataclass
class Batch:
    index: int
    members: Sequence[Member]
    attempts: int = 0
    alone: bool = False  # lost with other calls of its actor: run it with nothing queued beside

    def payload(self) -> list[dict[str, str]]:
        return [member.to_json() for member in self.members]


@dataclass
class _Slot:
    """One place in the pool; its actor is replaced when it dies."""

    actor: Any
    in_flight: int = 0
    alone: bool = False  # its call in flight is a batch that must run alone


@dataclass
class PoolStats:
    batches: int = 0
    retried_batches: int = 0
    replaced_actors: int = 0
    first_result_s: float | None = None  # from the pool's start to the first finished batch


def batches_of(members: Sequence[Member], size: int) -> list[Batch]:
    return [
        Batch(number, members[start : start + size])
        for number, start in enumerate(range(0, len(members), size))
    ]


def died_record(member: Member, error: str) -> Record:
    return {
        "member": member.id,
        "name": member.name,
        "path": member.path,
        "ok": False,
        "error": error,
        "traceback": "",
    }


def run_pool(
    spec: BatchSpec,
    members: Sequence[Member],
    on_records: Callable[[list[Record]], None],
) -> PoolStats:
    """Run every member through the pool; `on_records` gets each finished batch's records.

    A batch whose actor died (killed, out of memory, node lost) while it ran alone is retried on
    a fresh actor up to `spec.max_retries` times, then each of its members is recorded as
    failed; batches lost together go again alone first, so a death is charged to its batch. A
    processor that cannot be loaded raises ProcessorLoadError: no member could succeed.
    """
    import ray
    from ray.exceptions import ActorUnavailableError, RayActorError, WorkerCrashedError

    lost = (RayActorError, ActorUnavailableError, WorkerCrashedError)
    actor_class = ray.remote(BatchWorker).options(**spec.actor_options())

    def new_actor() -> Any:
        return actor_class.remote(spec.processor, dict(spec.processor_args))

    pending = deque(batches_of(members, spec.batch_size))
    stats = PoolStats(batches=len(pending))
    slots = [_Slot(new_actor()) for _ in range(min(spec.concurrency, len(pending)))]
    in_flight: dict[Any, tuple[_Slot, Any, Batch]] = {}  # call -> its slot, actor and batch
    running: dict[int, tuple[Any, bool]] = {}  # a dead actor -> whether it lost several calls
    started = time.monotonic()
    last_warning = started
    while pending or in_flight:
        for slot in slots:
            while pending and slot.in_flight < IN_FLIGHT_PER_ACTOR and not slot.alone:
                if pending[0].alone and slot.in_flight:
                    break  # wait until this actor has nothing else to run
                batch = pending.popleft()
                slot.alone = batch.alone
                call = slot.actor.process.remote(batch.payload())
                in_flight[call] = (slot, slot.actor, batch)
                slot.in_flight += 1
        done, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_WARNING_S)
        if not done:
            if stats.first_result_s is None and time.monotonic() - last_warning >= WAIT_WARNING_S:
                last_warning = time.monotonic()
                log.warning(
                    "no batch finished after %.0f s: the actors may be waiting for resources %s",
                    last_warning - started,
                    spec.actor_options(),
                )
            continue
        for ref in done:
            slot, actor, batch = in_flight.pop(ref)
            if slot.actor is actor:
                slot.in_flight -= 1
                slot.alone = False
            try:
                records = ray.get(ref)
            except lost as exc:
                if getattr(exc, "actor_init_failed", False):
                    raise ProcessorLoadError(f"cannot load {spec.processor}: {exc}") from exc
                if slot.actor is actor:  # its other calls fail too; they come back as they do
                    slot.actor, slot.in_flight, slot.alone = new_actor(), 0, False
                    stats.replaced_actors += 1
                # Which of a dead actor's calls was running is certain only when it had one:
                # an actor that exits right after finishing a call can lose that call's reply
                # too, so "the oldest lost call" may be a batch that was done. Calls lost
                # together go again, each alone on its actor, without using up a retry; a
                # death with one call in flight is that call's.
                if id(actor) not in running:
                    others = any(a is actor for _, a, _ in in_flight.values())
                    running[id(actor)] = (actor, others)
                if running[id(actor)][1]:
                    log.warning(
                        "batch %d lost its actor (%s) with other batches; running it alone",
                        batch.index,
                        exc,
                    )
                    batch.alone = True
                    pending.appendleft(batch)
                    continue
                batch.attempts += 1
                if batch.attempts <= spec.max_retries:
                    log.warning("batch %d lost its actor (%s); retrying", batch.index, exc)
                    stats.retried_batches += 1
                    pending.appendleft(batch)
                    continue
                error = (
                    f"actor died on every attempt ({batch.attempts}): {type(exc).__name__}: {exc}"
                )
                records = [died_record(member, error[:2000]) for member in batch.members]
            if stats.first_result_s is None:
                stats.first_result_s = time.monotonic() - started
            on_records(records)
    return stats
