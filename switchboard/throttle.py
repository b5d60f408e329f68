"""Back-pressure per target: `max_in_flight` jobs not yet finished, and a `rate` of sends.

The relay asks `Throttle.admit` which of the rows it claimed it may send now. Rows of targets
without limits pass; for a limited target the store admits them in one transaction that
locks the target's throttle row (so two relays, in one daemon or in several, admit one at a
time and one `max_in_flight` holds across all of them), counts the target's rows in flight
and takes tokens from its rate bucket. Admitted rows count as in flight from then on; the rest
stay pending with the reason `throttled` and come due again after `recheck_s`.

In flight: admitted, not failed, not finished (see `store.throttle_sql`) and admitted less
than `in_flight_timeout_s` ago, so a target that never reports back is not blocked forever.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .ports import OutboxRow

log = logging.getLogger(__name__)

THROTTLED = "throttled"  # an outbox row's hold reason
LIMIT_KEYS = ("max_in_flight", "rate")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PER_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PER_S |= {"h": 3600.0, "hour": 3600.0}


@dataclass(frozen=True, slots=True)
class TargetLimit:
    """One target's limits; None: not limited that way."""

    max_in_flight: int | None = None
    rate_per_s: float | None = None

    def describe(self) -> str:
        parts = []
        if self.max_in_flight is not None:
            parts.append(f"max_in_flight {self.max_in_flight}")
        if self.rate_per_s is not None:
            parts.append(f"rate {self.rate_per_s:g}/s")
        return ", ".join(parts) or "no limits"


def parse_rate(value: Any) -> float:
    """`10/s`, `600/min`, `5/h` or a number per second; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"rate must be like '10/s' or '600/min', not {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and (match := _RATE.match(value)):
        rate = float(match.group(1)) / _PER_S[match.group(2)]
    else:
        raise ValueError(f"rate must be like '10/s' or '600/min', not {value!r}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {value!r}")
    return rate


def parse_limit(value: Any) -> tuple[TargetLimit | None, list[tuple[str | None, str]]]:
    """One target's `{max_in_flight: N, rate: R}`; the limit, or (key, reason) problems."""
    if not isinstance(value, Mapping) or not value:
        return None, [(None, "a target's limits are a mapping: max_in_flight: N, rate: N/s")]
    problems: list[tuple[str | None, str]] = []
    for key in value:
        if key not in LIMIT_KEYS:
            problems.append((key, f"unknown limit {key!r} (known: {', '.join(LIMIT_KEYS)})"))
    most = value.get("max_in_flight")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        problems.append(("max_in_flight", f"max_in_flight must be a whole number >= 1: {most!r}"))
    rate = None
    if value.get("rate") is not None:
        try:
            rate = parse_rate(value["rate"])
        except ValueError as exc:
            problems.append(("rate", str(exc)))
    if problems:
        return None, problems
    return TargetLimit(most, rate), []


def parse_limits(value: Any, where: str) -> dict[str, TargetLimit]:
    """A `{target: {max_in_flight, rate}}` mapping (SWITCHBOARD_LIMITS); ValueError naming
    `where` and every problem."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: limits are a mapping of target name to its limits")
    limits: dict[str, TargetLimit] = {}
    reasons = []
    for target, spec in value.items():
        limit, problems = parse_limit(spec)
        reasons += [f"{where}: target {target!r}: {reason}" for _, reason in problems]
        if limit is not None:
            limits[str(target)] = limit
    if reasons:
        raise ValueError("; ".join(reasons))
    return limits


class Admissions(Protocol):
    """The store's side: admit rows of one target under its lock (see `store.throttle_sql`)."""

    def admit(
        self,
        target: str,
        limit: TargetLimit,
        rows: Sequence[OutboxRow],
        *,
        in_flight_timeout_s: float,
        recheck_s: float,
    ) -> set[str]:
        """The job ids of `rows` admitted; the others are held as throttled."""
        ...


class Throttle:
    """The relay's hook: which claimed rows may be sent now (see the module docstring).

    `limits` is asked on every call, so reloaded rules' `limits:` apply at once.
    """

    def __init__(
        self,
        admissions: Admissions,
        limits: Callable[[], Mapping[str, TargetLimit]],
        *,
        in_flight_timeout_s: float = 3600.0,
        recheck_s: float = 1.0,
    ) -> None:
        self.admissions = admissions
        self.limits = limits
        self.in_flight_timeout_s = in_flight_timeout_s
        self.recheck_s = recheck_s

    def admit(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """The rows to send now, in their order; the others are left held in the store."""
        limits = self.limits()
        if not limits or not rows:
            return list(rows)
        by_target: dict[str, list[OutboxRow]] = {}
        for row in rows:
            if row.submission.extractor in limits:
                by_target.setdefault(row.submission.extractor, []).append(row)
        if not by_target:
            return list(rows)
        admitted: set[str] = set()
        for target, group in by_target.items():
            ids = self.admissions.admit(
                target,
                limits[target],
                group,
                in_flight_timeout_s=self.in_flight_timeout_s,
                recheck_s=self.recheck_s,
            )
            admitted |= ids
            if len(ids) < len(group):
                log.debug("target %s throttled: %d of %d held", target, len(group) - len(ids))
        return [
            row
            for row in rows
            if row.submission.extractor not in by_target or row.submission.job_id in admitted
        ]


def merged_limits(*sources: Mapping[str, TargetLimit]) -> dict[str, TargetLimit]:
    """Limits from several places (settings, then rule files): a later source's target wins."""
    merged: dict[str, TargetLimit] = {}
    for source in sources:
        merged.update(source)
    return merged
