"""Re-run policies: which generation of a rule's job an event asks for (part of the job id).

`once` (the default) gives one job per (rule, target, resource), ever; `on_new_files` a new
generation whenever the set of the dataset's files matching the rule's `require` has grown
(its size is the generation: the inventory only grows, so a redelivered event names the same
generation); `every_event` one per event (its message id); `key: TEMPLATE` one per distinct
rendered key. Generations are pure functions of the event and the dataset view, so redelivery
and crashes never make a second job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..model import DatasetView, Event
from .conditions import Requirement
from .templates import Template, TemplateError, parse_template, tree_templates

RerunMode = Literal["once", "on_new_files", "every_event", "key"]
MODES: tuple[str, ...] = ("once", "on_new_files", "every_event")
SHAPES = "once, on_new_files, every_event or {key: TEMPLATE}"

# Fields that stay the same for every event about one resource (what `once` may safely use).
_STEADY_FOR: Mapping[str, tuple[str, ...]] = {
    "dataset": ("dataset.",),
    "file": ("dataset.", "file."),
}


@dataclass(frozen=True, slots=True)
class RerunPolicy:
    """A rule's re-run policy; `key` is the template of a `key:` policy."""

    mode: RerunMode = "once"
    key: Template | None = None

    def describe(self) -> str:
        if self.mode == "key" and self.key is not None:
            return f"key {self.key.source!r}"
        return self.mode


ONCE = RerunPolicy()


def parse_rerun(value: Any) -> RerunPolicy:
    """`rerun:` as written in YAML or `@rule(rerun=...)`; ValueError saying what is wrong."""
    if isinstance(value, RerunPolicy):
        return value
    if isinstance(value, str):
        if value not in MODES:
            raise ValueError(f"rerun must be {SHAPES}, not {value!r}")
        mode: RerunMode = value  # type: ignore[assignment]  # checked against MODES just above
        return RerunPolicy(mode)
    if isinstance(value, Mapping):
        if set(value) != {"key"} or not isinstance(value["key"], str) or not value["key"]:
            raise ValueError(f"rerun must be {SHAPES}; a mapping holds only key: TEMPLATE text")
        try:
            template = parse_template(value["key"])
        except TemplateError as exc:
            raise ValueError(f"rerun key: {exc}") from None
        if not template.fields:
            raise ValueError(
                f"rerun key {value['key']!r} has no {{field}}: every event would render the "
                "same key (that is rerun: once)"
            )
        return RerunPolicy("key", template)
    raise ValueError(f"rerun must be {SHAPES}, not {value!r}")


def matching_files(dataset: DatasetView | None, require: Iterable[Requirement]) -> int:
    """How many of the dataset's files match the rule's `require` (any `where`; all files when
    a requirement has none, or there is no `require`)."""
    if dataset is None:
        return 0
    wheres = [r.where for r in require]
    if not wheres or any(w is None for w in wheres):
        return len(dataset.files)
    return sum(
        1
        for f in dataset.files
        if any(w is not None and w.check(f, {}, None, False) for w in wheres)
    )


def generation(
    policy: RerunPolicy,
    event: Event,
    dataset: DatasetView | None,
    require: Iterable[Requirement],
    lookup: Callable[[str], Any],
) -> str:
    """The generation `event` asks for under `policy` (MissingValue if a key field is absent).

    Under `once`, `on_new_files` and `key`, a manual submission (`manual.*`) adds its message id,
    so an operator's deliberate re-check submits again, as it always has.
    """
    if policy.mode == "every_event":
        return f"event:{event.message_id}"
    if policy.mode == "on_new_files":
        base = f"files:{matching_files(dataset, require)}"
    elif policy.mode == "key" and policy.key is not None:
        base = f"key:{policy.key.render(lookup)}"
    else:
        base = "0"
    if event.kind.value.startswith("manual."):
        return event.message_id if base == "0" else f"{base}|{event.message_id}"
    return base


def collapse_warning(
    policy: RerunPolicy,
    resources_and_parameters: Iterable[tuple[str, Any]],
    captured_from: Mapping[str, str],
) -> str | None:
    """Why a `once` rule's submissions collapse (parameters that differ per event), or None.

    `resources_and_parameters` are each target's (resource, parameter template tree);
    `captured_from` maps a regex's named group to the field it was captured from.
    """
    if policy.mode != "once":
        return None
    varying: dict[str, str] = {}
    for resource, tree in resources_and_parameters:
        steady = _STEADY_FOR.get(resource, ())
        for template in tree_templates(tree):
            for name in template.fields:
                source = captured_from.get(name, name)
                if "." not in source or not source.startswith(steady):
                    varying.setdefault(name, resource)
    if not varying:
        return None
    shown = ", ".join(f"{{{name}}}" for name in sorted(varying))
    resource = next(iter(varying.values()))
    return (
        f"rerun once: parameters use {shown}, which can differ from event to event, but only "
        f"the first event per {resource} submits (the others collapse into its job); use "
        'rerun: every_event, rerun: {key: "{file.id}"} or rerun: on_new_files to submit again'
    )
