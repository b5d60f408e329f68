"""Compile a YAML rule's controls (`rerun:`, `debounce:`), reporting problems at their line."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..locations import SourceLocation
from ..throttle import TargetLimit, parse_limit
from .collect import parse_duration
from .model import SubmitSpec
from .rerun import ONCE, RerunPolicy, collapse_warning, parse_rerun
from .yaml_source import line_of, line_of_node

Report = Callable[[int, str], None]
FieldsKnown = Callable[..., bool]  # yaml_rules._fields_known
_REGEX_OPERATORS = ("regex", "iregex")


@dataclass(frozen=True, slots=True)
class Controls:
    """A rule's compiled controls."""

    rerun: RerunPolicy = ONCE
    debounce: timedelta | None = None

    def warnings(self, submits: Sequence[SubmitSpec], when: Any) -> list[str]:
        """Load-time warnings: a `once` rule whose parameters differ per event collapses."""
        targets = [(spec.resource, spec.parameters) for spec in submits]
        warning = collapse_warning(self.rerun, targets, captured_fields(when))
        return [warning] if warning is not None else []


def compile_controls(
    node: Mapping[str, Any],
    line: int,
    label: str,
    captures: set[str],
    report: Report,
    fields_known: FieldsKnown,
) -> Controls:
    """The rule's `rerun` and `debounce`; problems go to `report` (the defaults then)."""
    rerun = ONCE
    if "rerun" in node:
        at = line_of(node, "rerun", line)
        try:
            rerun = parse_rerun(node["rerun"])
        except ValueError as exc:
            report(at, f"{label}: {exc}")
        else:
            if rerun.key is not None and not fields_known(
                rerun.key.fields, at, label, captures, report
            ):
                rerun = ONCE
    debounce = None
    if "debounce" in node:
        at = line_of(node, "debounce", line)
        try:
            debounce = parse_duration(node["debounce"])
        except ValueError as exc:
            report(at, f"{label}: debounce: {exc}")
    if "collect" in node:
        for key in ("rerun", "debounce"):
            if key in node:
                report(
                    line_of(node, key, line),
                    f"{label}: {key} does not apply to a collect rule (a collection fires once "
                    "per generation; use after_fire and until: quiet_for)",
                )
    return Controls(rerun, debounce)


def captured_fields(when: Any) -> dict[str, str]:
    """Each named group of a regex test in `when` (at any depth) and the field it tests."""
    found: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item)
            return
        if not isinstance(value, Mapping):
            return
        for key, test in value.items():
            if key in ("all", "any", "not"):
                visit(test)
            elif isinstance(key, str) and isinstance(test, Mapping):
                for operator in _REGEX_OPERATORS:
                    pattern = test.get(operator)
                    if isinstance(pattern, str):
                        for group in _group_names(pattern):
                            found.setdefault(group, key)

    visit(when)
    return found


def _group_names(pattern: str) -> list[str]:
    try:
        return list(re.compile(pattern).groupindex)
    except re.error:  # the condition compiler reports it
        return []


def compile_limits(
    value: Any, line: int, report: Any
) -> dict[str, tuple[TargetLimit, SourceLocation]]:
    """A rule file's `limits: {target: {max_in_flight: N, rate: N/s}}`, each with where it is."""
    if not isinstance(value, Mapping):
        report(line, "limits must be a mapping of target name to {max_in_flight, rate}")
        return {}
    limits = {}
    for target, spec in value.items():
        at = line_of(value, target, line)
        limit, problems = parse_limit(spec)
        for key, reason in problems:
            where = line_of(spec, key, at) if key is not None and isinstance(spec, Mapping) else at
            report(where, f"limits: target {target!r}: {reason}")
        if limit is not None:
            limits[str(target)] = (limit, SourceLocation(report.path, line_of_node(spec, at)))
    return limits


__all__ = ["Controls", "TargetLimit", "captured_fields", "compile_controls", "compile_limits"]
