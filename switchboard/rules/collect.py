"""The `collect:` part of a rule as values: its spec, and what it asks of one event.

`collect_compiler` compiles the YAML into a `CollectSpec`.

A spec holds templates; the engine renders them per event into a `Collected` (pure data) and
the processor applies that in the database. The Python callable a `fraction` may name is
resolved when the rule loads, and only if it is allowed (a file beside the rule file or an
allowlisted `module:function`, see `collections.callables`; anything else is refused before
anything is imported), so a typo or a forbidden target is a `path:line: reason` problem. It
is never called at load: `switchboard check` has no side effects beyond loading that module
(a `file.py` module is executed, as an import would). The processor calls the resolved
function when a member arrives (see `collections.totals`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..limits import MAX_ID_BYTES, over_id_limit, utf8_length
from ..model import SubmitRequest
from .templates import (
    Template,
    ValueTree,
    render_value,
)

AfterFire = Literal["ignore", "next_generation"]
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _unresolved(**_: Any) -> Any:
    raise RuntimeError("this python total was not resolved by rule loading")


@dataclass(frozen=True, slots=True)
class PythonTotal:
    """`of: {python: "module:function", args: {...}}`: the total comes from a call.

    `function` is what rule loading resolved `target` to (after the allowlist check).
    """

    target: str
    args: ValueTree = field(default_factory=dict)
    base_dir: str = ""
    function: Callable[..., Any] = field(default=_unresolved, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Until:
    """Firing conditions, all of which must hold (AND)."""

    count: int | None = None
    min_count: int | None = None
    fraction_of: int | Template | PythonTotal | None = None
    at_least: float = 1.0
    all_of: tuple[Template, ...] = ()
    quiet_for: timedelta | None = None


@dataclass(frozen=True, slots=True)
class CollectSpec:
    key: Template
    member: Template
    until: Until
    data: ValueTree = field(default_factory=dict)
    after_fire: AfterFire = "ignore"
    manifest_file: bool = False


@dataclass(frozen=True, slots=True)
class RenderedCall:
    """A Python total with its arguments rendered for one event."""

    target: str
    args: Mapping[str, Any]
    base_dir: str
    function: Callable[..., Any] = field(default=_unresolved, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Collected:
    """What one event asks of a collection: add `member` under `key`, then check `until`."""

    rule: str
    key: str
    member: str
    data: Mapping[str, Any] | None
    spec: CollectSpec
    total: int | RenderedCall | None
    all_of: frozenset[str]
    requests: tuple[SubmitRequest, ...]


def render_collected(
    rule: str,
    spec: CollectSpec,
    lookup: Callable[[str], Any],
    requests: tuple[SubmitRequest, ...],
) -> Collected:
    """Render the spec for one event; MissingValue if a template field is absent."""
    until = spec.until
    total: int | RenderedCall | None
    if isinstance(until.fraction_of, Template):
        total = _as_total(until.fraction_of.render(lookup), until.fraction_of.source)
    elif isinstance(until.fraction_of, PythonTotal):
        of = until.fraction_of
        total = RenderedCall(of.target, render_value(of.args, lookup), of.base_dir, of.function)
    else:
        total = until.fraction_of
    data = render_value(spec.data, lookup) if spec.data else None
    return Collected(
        rule=rule,
        key=_bounded(spec.key, "key", lookup),
        member=_bounded(spec.member, "member", lookup),
        data=data,
        spec=spec,
        total=total,
        all_of=frozenset(t.render(lookup) for t in until.all_of),
        requests=requests,
    )


def _bounded(template: Template, what: str, lookup: Callable[[str], Any]) -> str:
    """A rendered key or member; ValueError (this rule's error for this event) when it is too
    long for the database's index (`limits.MAX_ID_BYTES`)."""
    text = template.render(lookup)
    if over_id_limit(text):
        raise ValueError(
            f"collection {what} {template.source!r} rendered to {utf8_length(text)} bytes,"
            f" over the {MAX_ID_BYTES}-byte limit"
        )
    return text


def _as_total(text: str, source: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        raise ValueError(f"fraction 'of' template {source!r} gave {text!r}, not a number") from None


def parse_duration(value: Any) -> timedelta:
    """`90` (seconds), `"30s"`, `"10m"`, `"1h30m"`, `"500ms"`, `"2d"`; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(text) or pos == 0:
            raise ValueError(
                f"bad duration {value!r} (use a number of seconds or e.g. '30s', '10m', '1h30m')"
            )
    else:
        raise ValueError(f"bad duration {value!r}")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)
