"""The `Rule` value every rule source compiles to, its submit specs, and the loaded `RuleSet`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..locations import NOWHERE, SourceLocation
from ..model import EMPTY, DatasetView, Event, EventKind, ResourceType, SubmitRequest
from .conditions import Condition, Requirement
from .rerun import ONCE, RerunPolicy
from .templates import Template, ValueTree, render_value

if TYPE_CHECKING:
    from .collect import CollectSpec

RuleKind = Literal["yaml", "python", "legacy"]
DEFAULT_ON: tuple[str, ...] = (EventKind.FILE_ADDED.value,)


@dataclass(frozen=True, slots=True)
class SubmitSpec:
    """A YAML rule's `submit` entry: target and parameters still as templates."""

    extractor: Template
    resource: ResourceType = "dataset"
    via: str = "amqp"
    parameters: ValueTree = field(default_factory=dict)
    # the sink's options (see sink_registry), literal data, never templates (an entrypoint
    # meets a shell)
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    def render(self, lookup: Callable[[str], Any]) -> SubmitRequest:
        """The concrete request for one event; MissingValue if a template field is absent."""
        parameters = render_value(self.parameters, lookup)
        return SubmitRequest(
            self.extractor.render(lookup),
            self.resource,
            self.via,
            MappingProxyType(parameters),
            self.options,
        )


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule, declarative (YAML) or Python; the engine treats both alike.

    A Python rule stays callable: `rule(event, dataset)` runs its function directly, which is
    how rule authors unit-test it. `source` is where it is defined (shown as `path:line`).
    """

    name: str
    kind: RuleKind
    on: tuple[str, ...]
    kinds: frozenset[EventKind]
    source: SourceLocation = NOWHERE
    description: str = ""
    enabled: bool = True
    when: Condition | None = None
    require: tuple[Requirement, ...] = ()
    submits: tuple[SubmitSpec, ...] = ()
    function: Callable[[Event, DatasetView], Any] | None = None
    collect: CollectSpec | None = None
    # Python rules: run in a worker process killed at the time limit (None: not said, which the
    # module's SWITCHBOARD_ISOLATED decides when loaded, else in-thread); `module_path` is the
    # resolved file the rule was loaded from, which that worker imports again.
    isolated: bool | None = None
    module_path: str = ""
    # Rule controls: which generation of its job an event asks for (see rules.rerun), how long
    # a resource's submission is held until no further matching event came (None: not held),
    # and load-time warnings (`check` prints them, the daemon logs them).
    rerun: RerunPolicy = ONCE
    debounce: timedelta | None = None
    warnings: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        """Extractor names (as written) a YAML rule sends to; empty for Python rules."""
        return tuple(s.extractor.source for s in self.submits)

    @property
    def declarative(self) -> bool:
        return self.function is None

    def __call__(self, event: Event, dataset: DatasetView) -> Any:
        if self.function is None:
            raise TypeError(f"rule {self.name!r} is declarative: evaluate it with an Engine")
        return self.function(event, dataset)

    def __repr__(self) -> str:
        where = str(self.source)
        return f"Rule({self.name!r}, kind={self.kind!r}, on={list(self.on)!r}, source={where!r})"


@dataclass(frozen=True)
class RuleSet:
    """Loaded rules in load order (files in the order given, rules in file order)."""

    rules: tuple[Rule, ...] = ()
    sources: tuple[str, ...] = ()
    # back-pressure per target from the rule files' `limits:` ({target: throttle.TargetLimit})
    limits: Mapping[str, Any] = field(default_factory=dict)
    _by_name: Mapping[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        sources: Iterable[str] = (),
        limits: Mapping[str, Any] | None = None,
    ) -> None:
        rules = tuple(rules)
        seen: dict[str, Rule] = {}
        for r in rules:
            if r.name in seen:
                raise ValueError(
                    f"duplicate rule name {r.name!r} ({seen[r.name].source}, {r.source})"
                )
            seen[r.name] = r
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "sources", tuple(sources))
        object.__setattr__(self, "limits", MappingProxyType(dict(limits or {})))
        object.__setattr__(self, "_by_name", MappingProxyType(seen))

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Rule:
        return self._by_name[name]

    def get(self, name: str) -> Rule | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return [r.name for r in self.rules]
