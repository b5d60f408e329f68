"""Why a rule did not fire: the closest rule for an unrouted event, a collection's progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from ..collections.state import FIRED, CollectionState
from ..model import Decision, Event
from ..rules.collect import CollectSpec


def _verdict(reason: str) -> str | None:
    """ "held" or "failed" for a condition's reason (the outermost verdict: the last one, as
    in `not [a: failed (...)]: held`), None for other reasons."""
    held, failed = reason.rfind(": held"), reason.rfind(": failed")
    if held < 0 and failed < 0:
        return None
    return "held" if held > failed else "failed"


def _tally(d: Decision) -> tuple[int, int]:
    """(held, failed) among a decision's condition reasons."""
    verdicts = [_verdict(r) for r in d.reasons]
    return verdicts.count("held"), verdicts.count("failed")


def _closeness(d: Decision) -> tuple[float, int]:
    """Higher is closer: the share of its conditions that held, then fewer failures. A rule
    with no conditions to judge (a Python rule that returned nothing) comes last."""
    held, failed = _tally(d)
    if held + failed == 0:
        return (-1.0, 0)
    return (held / (held + failed), -failed)


def closest_rule(decisions: Sequence[Decision], event: Event) -> list[str]:
    """Which rule came closest to matching an event none matched, and why it failed.

    Closest = a rule whose error stopped it after its conditions held, else, of the rules
    that select the event's kind, the one with the largest share of its conditions held."""
    erred = [d for d in decisions if d.error]
    if erred:
        d = erred[0]
        return [f"closest rule: {d.rule}: its conditions held but it failed: {d.error}"]
    candidates = [
        d
        for d in decisions
        if not any(r == "rule is disabled" or "is not selected" in r for r in d.reasons)
    ]
    if not candidates:
        return [f"closest rule: none selects events of kind {event.kind.value!r}"]
    best = max(candidates, key=_closeness)
    held, failed = _tally(best)
    lines = [
        f"closest rule: {best.rule} ({held} of {held + failed} conditions held); it failed on:"
    ]
    lines += [f"  {r}" for r in best.reasons if _verdict(r) == "failed"]
    if not failed:
        lines += [f"  {r}" for r in best.reasons] or ["  it asked for nothing to submit"]
    return lines


def _quiet(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def why_not_fired(spec: CollectSpec, state: CollectionState) -> list[str]:
    """The collection's count / expected and, unless it fired, every `until` not yet met."""
    until = spec.until
    expected = until.count or until.min_count or state.expected
    shown = f"{state.count} of {expected}" if expected else f"{state.count}"
    lines = [f"generation {state.generation} {state.state}: {shown} members"]
    if state.state == FIRED:
        if spec.after_fire == "ignore":
            lines.append("fired; members arriving later are ignored (after_fire: ignore)")
        return lines
    missing = []
    if until.count is not None and state.count < until.count:
        missing.append(f"count: {until.count} needs {until.count - state.count} more member(s)")
    if until.min_count is not None and state.count < until.min_count:
        needed = until.min_count - state.count
        missing.append(f"min_count: {until.min_count} needs {needed} more member(s)")
    if until.fraction_of is not None:
        if not state.expected:
            missing.append("fraction: the expected total is not known yet")
        elif state.count / state.expected < until.at_least:
            have = state.count / state.expected
            missing.append(
                f"fraction: {have:.0%} of {state.expected} expected, needs {until.at_least:.0%}"
            )
    if until.all_of:
        missing.append(f"all_of: waits until all {len(until.all_of)} listed members are in")
    if until.quiet_for is not None:
        deadline = state.quiet_deadline
        when = deadline.isoformat(timespec="seconds") if deadline else "its next member"
        missing.append(f"quiet_for: {_quiet(until.quiet_for)} of no new member; due {when}")
    if not missing:
        missing.append("every until condition holds now: it fires with its next member")
    lines += [f"not fired: {m}" for m in missing]
    return lines
