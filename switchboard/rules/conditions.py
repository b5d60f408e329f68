"""The condition language: field tests nested with all/any/not, and dataset-level requirements.

A condition is compiled once from YAML into a small tree; `check` walks it for one subject,
collecting regex captures (for templates) and human-readable reasons (for decisions and
`switchboard explain`). Reasons are only built when a list is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..model import DatasetView
from .fields import ABSENT, Getter, show
from .operators import Operator

Reasons = list[str] | None


class Condition:
    """A node of a compiled condition tree."""

    __slots__ = ()

    def check(
        self, subject: Any, captures: dict[str, str], reasons: Reasons, thorough: bool
    ) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class FieldTest(Condition):
    """One operator applied to one field."""

    path: str
    getter: Getter
    op: Operator
    label: str = field(init=False, default="")
    _absent_fails: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"{self.path} {self.op.describe()}")
        object.__setattr__(self, "_absent_fails", self.op.name != "exists")

    def check(
        self, subject: Any, captures: dict[str, str], reasons: Reasons, thorough: bool
    ) -> bool:
        value = self.getter(subject)
        if self.op.captures:
            match = self.op.search(value)  # type: ignore[attr-defined]
            held = match is not None
            if held:
                captures.update({k: v for k, v in match.groupdict().items() if v is not None})
        elif value is ABSENT and self._absent_fails:
            held = False
        else:
            held = self.op.test(value)
        if reasons is not None:
            if held:
                reasons.append(self.label + ": held")
            else:
                reasons.append(f"{self.label}: failed ({self.path} is {show(self.path, value)})")
        return held

    def describe(self) -> str:
        return self.label


def _joined(reasons: list[str]) -> str:
    return "; ".join(reasons)


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    items: tuple[Condition, ...]

    def check(
        self, subject: Any, captures: dict[str, str], reasons: Reasons, thorough: bool
    ) -> bool:
        held = True
        for item in self.items:
            if not item.check(subject, captures, reasons, thorough):
                held = False
                if not thorough:
                    break
        return held

    def describe(self) -> str:
        return "all of [" + "; ".join(i.describe() for i in self.items) + "]"


@dataclass(frozen=True, slots=True)
class AnyOf(Condition):
    items: tuple[Condition, ...]

    def check(
        self, subject: Any, captures: dict[str, str], reasons: Reasons, thorough: bool
    ) -> bool:
        inner: Reasons = [] if reasons is not None else None
        held = False
        for item in self.items:
            branch: dict[str, str] = {}
            if item.check(subject, branch, inner, thorough):
                if not held:
                    captures.update(branch)  # captures come from the first branch that held
                held = True
                if not thorough:
                    break
        if reasons is not None:
            reasons.append(f"any of [{_joined(inner or [])}]: {'held' if held else 'failed'}")
        return held

    def describe(self) -> str:
        return "any of [" + "; ".join(i.describe() for i in self.items) + "]"


@dataclass(frozen=True, slots=True)
class Not(Condition):
    item: Condition

    def check(
        self, subject: Any, captures: dict[str, str], reasons: Reasons, thorough: bool
    ) -> bool:
        inner: Reasons = [] if reasons is not None else None
        held = not self.item.check(subject, {}, inner, thorough)
        if reasons is not None:
            reasons.append(f"not [{_joined(inner or [])}]: {'held' if held else 'failed'}")
        return held

    def describe(self) -> str:
        return f"not [{self.item.describe()}]"


Quantifier = Literal["count", "any", "all", "none"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """A test over the dataset's known files: how many match `where` (count / any / all / none)."""

    where: Condition | None
    quantifier: Quantifier
    count: Operator | None = None

    def check(self, dataset: DatasetView | None, reasons: Reasons) -> bool:
        files = dataset.files if dataset is not None else ()
        if self.where is None:
            matching = len(files)
        else:
            where = self.where
            matching = sum(1 for f in files if where.check(f, {}, None, False))
        total = len(files)
        if self.quantifier == "count":
            held = self.count is not None and self.count.test(matching)
        elif self.quantifier == "any":
            held = matching > 0
        elif self.quantifier == "all":
            held = matching == total
        else:
            held = matching == 0
        if reasons is not None:
            reasons.append(
                f"{self.describe()}: {'held' if held else 'failed'} "
                f"({matching} of {total} files match)"
            )
        return held

    def describe(self) -> str:
        where = f" where {self.where.describe()}" if self.where is not None else ""
        test = f"count {self.count.describe()}" if self.count is not None else f"{self.quantifier}"
        return f"dataset.files{where} {test}"
