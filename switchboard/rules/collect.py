"""The `collect:` part of a YAML rule: its value types and its strict compilation from YAML.

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

from ..collections.callables import CallableRefused, resolve
from ..limits import MAX_ID_BYTES, over_id_limit, utf8_length
from ..model import SubmitRequest
from .operators import did_you_mean
from .templates import (
    Template,
    TemplateError,
    ValueTree,
    compile_value,
    parse_template,
    render_value,
    tree_templates,
)
from .yaml_source import line_of, line_of_node

AfterFire = Literal["ignore", "next_generation"]
COLLECT_KEYS = ("key", "member", "data", "until", "after_fire", "manifest_file")
UNTIL_KEYS = ("count", "min_count", "fraction", "all_of", "quiet_for")
FRACTION_KEYS = ("of", "at_least")
PYTHON_KEYS = ("python", "args")
AFTER_FIRE = ("ignore", "next_generation")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CALLABLE = re.compile(r"[\w./-]+(\.py)?:[A-Za-z_]\w*|[A-Za-z_][\w.]*:[A-Za-z_]\w*")

Report = Callable[[int, str], None]
FieldsCheck = Callable[[tuple[str, ...], int], bool]


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


class CollectCompiler:
    """Compiles one rule's `collect:` node, reporting every mistake as (line, reason)."""

    def __init__(
        self,
        label: str,
        report: Report,
        fields_known: FieldsCheck,
        base_dir: str,
        allowlist: tuple[str, ...] = (),
    ):
        self.label = label
        self.allowlist = allowlist
        self.report = report
        self.fields_known = fields_known
        self.base_dir = base_dir
        self.ok = True

    def problem(self, line: int, reason: str) -> None:
        self.ok = False
        self.report(line, f"{self.label}: collect: {reason}")

    def compile(self, node: Any, line: int) -> CollectSpec | None:
        if not isinstance(node, Mapping):
            self.problem(line, "must be a mapping with key, member and until")
            return None
        line = line_of_node(node, line)
        self._unknown(node, COLLECT_KEYS, line, "collect")
        key = self._template(node, "key", line, required=True)
        member = self._template(node, "member", line, required=True)
        data = self._data(node.get("data"), line_of(node, "data", line))
        until = self._until(node.get("until"), line_of(node, "until", line))
        after_fire = node.get("after_fire", "ignore")
        if after_fire not in AFTER_FIRE:
            self.problem(
                line_of(node, "after_fire", line),
                f"after_fire must be ignore or next_generation, not {after_fire!r}",
            )
        manifest_file = node.get("manifest_file", False)
        if not isinstance(manifest_file, bool):
            self.problem(
                line_of(node, "manifest_file", line),
                f"manifest_file must be true or false, not {manifest_file!r}",
            )
        if not self.ok or key is None or member is None or until is None:
            return None
        return CollectSpec(key, member, until, data, after_fire, manifest_file)

    def _unknown(
        self, node: Mapping[str, Any], known: tuple[str, ...], line: int, where: str
    ) -> None:
        for k in node:
            if k not in known:
                self.problem(
                    line_of(node, k, line), f"unknown key {k!r} in {where}{did_you_mean(k, known)}"
                )

    def _template(
        self, node: Mapping[str, Any], name: str, line: int, *, required: bool = False
    ) -> Template | None:
        if name not in node:
            if required:
                self.problem(line, f"needs {name!r} (a template)")
            return None
        return self._parse(node[name], line_of(node, name, line), name)

    def _parse(self, value: Any, line: int, what: str) -> Template | None:
        if not isinstance(value, str) or not value:
            self.problem(line, f"{what} must be a non-empty template text, not {value!r}")
            return None
        try:
            template = parse_template(value)
        except TemplateError as exc:
            self.problem(line, f"{what}: {exc}")
            return None
        if not self.fields_known(template.fields, line):
            self.ok = False
            return None
        return template

    def _data(self, value: Any, line: int) -> ValueTree:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(line, "data must be a mapping of names to templates")
            return {}
        tree = {}
        for k, raw in value.items():
            k_line = line_of(value, k, line)
            try:
                tree[k] = compile_value(raw)
            except TemplateError as exc:
                self.problem(k_line, f"data {k!r}: {exc}")
                continue
            for t in tree_templates(tree[k]):
                if not self.fields_known(t.fields, k_line):
                    self.ok = False
        return tree

    def _until(self, node: Any, line: int) -> Until | None:
        if not isinstance(node, Mapping) or not node:
            self.problem(line, f"needs 'until' with at least one of {', '.join(UNTIL_KEYS)}")
            return None
        line = line_of_node(node, line)
        self._unknown(node, UNTIL_KEYS, line, "until")
        count = self._positive_int(node, "count", line)
        min_count = self._positive_int(node, "min_count", line)
        fraction_of, at_least = self._fraction(
            node.get("fraction"), line_of(node, "fraction", line)
        )
        all_of = self._all_of(node.get("all_of"), line_of(node, "all_of", line))
        quiet_for = None
        if "quiet_for" in node:
            try:
                quiet_for = parse_duration(node["quiet_for"])
            except ValueError as exc:
                self.problem(line_of(node, "quiet_for", line), f"quiet_for: {exc}")
        if "min_count" in node and set(node) <= {"min_count"}:
            self.problem(line, "min_count alone never fires; add count, fraction or quiet_for")
        return Until(count, min_count, fraction_of, at_least, all_of, quiet_for)

    def _positive_int(self, node: Mapping[str, Any], name: str, line: int) -> int | None:
        if name not in node:
            return None
        value = node[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(
                line_of(node, name, line), f"{name} must be a positive whole number, not {value!r}"
            )
            return None
        return value

    def _fraction(self, node: Any, line: int) -> tuple[int | Template | PythonTotal | None, float]:
        if node is None:
            return None, 1.0
        if not isinstance(node, Mapping):
            self.problem(line, "fraction must be a mapping with 'of' and 'at_least'")
            return None, 1.0
        line = line_of_node(node, line)
        self._unknown(node, FRACTION_KEYS, line, "fraction")
        at_least = node.get("at_least", 1.0)
        if isinstance(at_least, bool) or not isinstance(at_least, int | float):
            self.problem(line_of(node, "at_least", line), "at_least must be a number in (0, 1]")
            at_least = 1.0
        elif not 0 < at_least <= 1:
            self.problem(
                line_of(node, "at_least", line),
                f"at_least must be a fraction in (0, 1], not {at_least!r} (0.95 means 95%)",
            )
        if "of" not in node:
            self.problem(line, "fraction needs 'of': a number, a template or {python: ...}")
            return None, float(at_least)
        of, of_line = node["of"], line_of(node, "of", line)
        if isinstance(of, bool):
            self.problem(of_line, "fraction 'of' must be a number, template or callable")
            return None, float(at_least)
        if isinstance(of, int):
            if of < 1:
                self.problem(of_line, f"fraction 'of' must be positive, not {of}")
            return of, float(at_least)
        if isinstance(of, str):
            return self._parse(of, of_line, "fraction 'of'"), float(at_least)
        if isinstance(of, Mapping):
            return self._python(of, line_of_node(of, of_line)), float(at_least)
        self.problem(of_line, f"fraction 'of' must be a number, template or callable, not {of!r}")
        return None, float(at_least)

    def _python(self, node: Mapping[str, Any], line: int) -> PythonTotal | None:
        self._unknown(node, PYTHON_KEYS, line, "fraction 'of'")
        target = node.get("python")
        if not isinstance(target, str) or not _CALLABLE.fullmatch(target):
            self.problem(
                line_of(node, "python", line),
                f"python must name a callable as 'module:function' or 'file.py:function', "
                f"not {target!r}",
            )
            return None
        function = self._resolve(target, line_of(node, "python", line))
        if function is None:
            return None
        args = node.get("args", {})
        a_line = line_of(node, "args", line)
        if not isinstance(args, Mapping):
            self.problem(a_line, "args must be a mapping of names to values or templates")
            return None
        tree = {}
        for k, raw in args.items():
            try:
                tree[k] = compile_value(raw)
            except TemplateError as exc:
                self.problem(line_of(args, k, a_line), f"args {k!r}: {exc}")
                continue
            for t in tree_templates(tree[k]):
                if not self.fields_known(t.fields, line_of(args, k, a_line)):
                    self.ok = False
        return PythonTotal(target, tree, self.base_dir, function)

    def _resolve(self, target: str, line: int) -> Callable[..., Any] | None:
        """The allowed callable `target` names (its module loaded, never called), or None."""
        try:
            return resolve(target, self.base_dir, self.allowlist)
        except CallableRefused as exc:
            self.problem(line, f"python {target!r} is not allowed: {exc}")
        except Exception as exc:  # whatever importing raises is the rule's problem
            self.problem(line, f"python {target!r} cannot be used: {type(exc).__name__}: {exc}")
        return None

    def _all_of(self, value: Any, line: int) -> tuple[Template, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            self.problem(line, "all_of must be a non-empty list of members (templates)")
            return ()
        found = []
        for i, item in enumerate(value):
            if isinstance(item, int | float) and not isinstance(item, bool):
                item = str(item)
            template = self._parse(item, line_of(value, i, line), "all_of item")
            if template is not None:
                found.append(template)
        return tuple(found)
