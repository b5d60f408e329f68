"""Compile YAML rule files into `Rule` values, collecting every problem as `path:line: reason`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..locations import SourceLocation
from ..model import (
    EventKind,
    kinds_matching,
    reserved_parameter_problem,
)
from ..secrets import is_secret
from ..sink_registry import OPTION_KEYS, VIAS, option_problems, plain_options
from .collect import CollectSpec
from .collect_compiler import CollectCompiler
from .condition_compiler import CompileContext, compile_condition, compile_requirement
from .conditions import Condition, Requirement
from .controls_compiler import TargetLimit, compile_controls, compile_limits
from .fields import FieldError, event_field
from .model import DEFAULT_ON, Rule, SubmitSpec
from .operators import did_you_mean
from .templates import Template, TemplateError, compile_value, parse_template, tree_templates
from .yaml_source import line_of, line_of_node, load_yaml

RULE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
RULE_KEYS = (
    "name",
    "description",
    "enabled",
    "on",
    "when",
    "require",
    "collect",
    "submit",
    "rerun",
    "debounce",
)
SUBMIT_KEYS = ("extractor", "resource", "via", "parameters", *OPTION_KEYS)
RESOURCES = ("file", "dataset")


class _Problems:
    """Collects problems for one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Problem] = []

    def __call__(self, line: int, reason: str) -> None:
        self.items.append(Problem(self.path, line, reason))


@dataclass
class YamlFile:
    """One compiled rule file: its valid rules, every problem, and every rule name it declares.

    `declared` holds (name, location) of every rule with a well-formed name, dropped ones
    included, so a duplicate name is reported even when its first definition has errors.
    """

    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    declared: list[tuple[str, SourceLocation]] = field(default_factory=list)
    limits: dict[str, tuple[TargetLimit, SourceLocation]] = field(default_factory=dict)


def rules_from_yaml(
    path: str, text: str, *, python_allowlist: Iterable[str] = ()
) -> tuple[list[Rule], list[Problem]]:
    """Every valid rule in the file and every problem found (a rule with problems is dropped)."""
    compiled = compile_yaml_file(path, text, python_allowlist=python_allowlist)
    return compiled.rules, compiled.problems


def compile_yaml_file(path: str, text: str, *, python_allowlist: Iterable[str] = ()) -> YamlFile:
    """Compile one YAML rule file; `python_allowlist` adds callables a `python:` total may name."""
    report = _Problems(path)
    result = YamlFile(problems=report.items)
    data, yaml_problems = load_yaml(text)
    for line, reason in yaml_problems:
        report(line, reason)
    if data is None:
        return result
    if isinstance(data, Mapping):
        if "rules" not in data or not set(data) <= {"rules", "limits"}:
            report(
                line_of_node(data, 1),
                "a rule file is a list of rules, or a mapping with the key 'rules' (and 'limits')",
            )
            return result
        if "limits" in data:
            result.limits = compile_limits(data["limits"], line_of(data, "limits", 1), report)
        data = data["rules"] if data["rules"] is not None else []
    if not isinstance(data, list):
        report(
            line_of_node(data, 1),
            "a rule file is a list of rules, or a mapping with the key 'rules' (and 'limits')",
        )
        return result
    allowlist = tuple(python_allowlist)
    for i, node in enumerate(data):
        line = line_of(data, i, 1)
        name = node.get("name") if isinstance(node, Mapping) else None
        if isinstance(name, str) and RULE_NAME.fullmatch(name):
            result.declared.append((name, SourceLocation(path, line_of_node(node, line))))
        compiled = _compile_rule(node, line, path, report, allowlist)
        if compiled is not None:
            result.rules.append(compiled)
    return result


def _compile_rule(
    node: Any, line: int, path: str, report: _Problems, allowlist: tuple[str, ...]
) -> Rule | None:
    """One rule mapping as a Rule, or None once its problems are reported. Over 60 lines
    because it checks the top-level keys in the order an author reads them, each a few lines;
    split, the checks would pass the half-built rule around."""
    if not isinstance(node, Mapping):
        report(line, "a rule must be a mapping (name, on, when, require, submit)")
        return None
    line = line_of_node(node, line)
    before = len(report.items)

    name = node.get("name")
    label = f"rule {name!r}" if isinstance(name, str) else "rule"
    for key in node:
        if key not in RULE_KEYS:
            report(
                line_of(node, key, line),
                f"unknown key {key!r} in {label}{did_you_mean(key, RULE_KEYS)}",
            )
    if name is None:
        report(line, "rule has no name")
    elif not isinstance(name, str) or not RULE_NAME.fullmatch(name):
        report(
            line_of(node, "name", line),
            f"invalid rule name {name!r} (use letters, digits, '_', '.', '-')",
        )

    description = node.get("description", "")
    if not isinstance(description, str):
        report(line_of(node, "description", line), f"{label}: description must be text")
    enabled = node.get("enabled", True)
    if not isinstance(enabled, bool):
        report(
            line_of(node, "enabled", line),
            f"{label}: enabled must be true or false, not {enabled!r}",
        )

    on = _compile_on(node.get("on", list(DEFAULT_ON)), line_of(node, "on", line), label, report)

    captures: set[str] = set()
    when: Condition | None = None
    if "when" in node:
        ctx = CompileContext("event", report, captures)
        when = compile_condition(node["when"], line_of(node, "when", line), ctx)

    require = _compile_require(node.get("require"), line_of(node, "require", line), label, report)

    submits = _compile_submits(
        node.get("submit"), line_of(node, "submit", line), label, captures, report
    )

    collect = _compile_collect(node, line, label, captures, path, report, allowlist)
    controls = compile_controls(node, line, label, captures, report, _fields_known)

    if len(report.items) > before:
        return None
    assert isinstance(name, str) and on is not None
    warnings = controls.warnings(submits, node.get("when"))
    return Rule(
        name=name,
        kind="yaml",
        on=on,
        kinds=kinds_matching(on),
        source=SourceLocation(path, line),
        description=description,
        enabled=enabled,
        when=when,
        require=require,
        submits=submits,
        collect=collect,
        rerun=controls.rerun,
        debounce=controls.debounce,
        warnings=tuple(f"{path}:{line}: {label}: {w}" for w in warnings),
    )


def _compile_collect(
    node: Mapping[str, Any],
    line: int,
    label: str,
    captures: set[str],
    path: str,
    report: _Problems,
    allowlist: tuple[str, ...],
) -> CollectSpec | None:
    if "collect" not in node:
        return None

    def fields_known(fields: tuple[str, ...], at: int) -> bool:
        return _fields_known(fields, at, label, captures, report)

    compiler = CollectCompiler(label, report, fields_known, str(Path(path).parent), allowlist)
    return compiler.compile(node["collect"], line_of(node, "collect", line))


def _compile_on(value: Any, line: int, label: str, report: _Problems) -> tuple[str, ...] | None:
    patterns = [value] if isinstance(value, str) else value
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) for p in patterns)
    ):
        report(line, f"{label}: 'on' must be an event kind (glob) or a list of them")
        return None
    ok = True
    for i, pattern in enumerate(patterns):
        if not kinds_matching([pattern]):
            known = ", ".join(k.value for k in EventKind)
            report(
                line_of(value, i, line),
                f"{label}: 'on' {pattern!r} matches no event kind (known: {known})",
            )
            ok = False
    return tuple(patterns) if ok else None


def _compile_require(
    value: Any, line: int, label: str, report: _Problems
) -> tuple[Requirement, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        report(line, f"{label}: 'require' must be a mapping with the key dataset.files")
        return ()
    requirements: list[Requirement] = []
    for key, spec in value.items():
        key_line = line_of(value, key, line)
        if key != "dataset.files":
            report(key_line, f"{label}: unknown requirement {key!r} (only dataset.files)")
            continue
        specs = spec if isinstance(spec, list) else [spec]
        for i, item in enumerate(specs):
            compiled = compile_requirement(
                item, line_of_node(item, line_of(spec, i, key_line)), report
            )
            if compiled is not None:
                requirements.append(compiled)
    return tuple(requirements)


def _compile_submits(
    value: Any, line: int, label: str, captures: set[str], report: _Problems
) -> tuple[SubmitSpec, ...]:
    if value is None:
        report(line, f"{label} has no submit target")
        return ()
    items = value if isinstance(value, list) else [value]
    if not items:
        report(line, f"{label} has no submit target (empty list)")
        return ()
    specs = []
    for i, item in enumerate(items):
        spec = _compile_submit(item, line_of(value, i, line), label, captures, report)
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def _compile_submit(
    node: Any, line: int, label: str, captures: set[str], report: _Problems
) -> SubmitSpec | None:
    if not isinstance(node, Mapping):
        report(line, f"{label}: submit must be a mapping with an extractor")
        return None
    line = line_of_node(node, line)
    ok = True
    for key in node:
        if key not in SUBMIT_KEYS:
            report(
                line_of(node, key, line),
                f"{label}: unknown key {key!r} in submit{did_you_mean(key, SUBMIT_KEYS)}",
            )
            ok = False
    extractor = node.get("extractor")
    ex_line = line_of(node, "extractor", line)
    template = None
    if not isinstance(extractor, str) or not extractor.strip():
        report(ex_line, f"{label}: submit needs a non-empty extractor")
        ok = False
    else:
        template = _template(extractor, ex_line, label, captures, report)
        ok = ok and template is not None
    resource = node.get("resource", "dataset")
    if resource not in RESOURCES:
        report(
            line_of(node, "resource", line),
            f"{label}: resource must be file or dataset, not {resource!r}",
        )
        ok = False
    via = node.get("via", "amqp")
    if via not in VIAS:
        report(
            line_of(node, "via", line),
            f"{label}: via must be one of {', '.join(VIAS)}, not {via!r}",
        )
        ok = False
    options = {k: node[k] for k in OPTION_KEYS if node.get(k) is not None}
    for key, reason in option_problems(via, options) if via in VIAS else ():
        report(_line_of_dotted(node, key, line), f"{label}: {reason}")
        ok = False
    tree = _compile_parameters(node, line, label, captures, report)
    ok = ok and tree is not None
    if not ok or template is None:
        return None
    return SubmitSpec(template, resource, via, tree or {}, plain_options(options))


def _line_of_dotted(node: Any, dotted: str, line: int) -> int:
    """The line of `a.b.c` inside `node` (a nested option's key), as deep as it is found."""
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            break
        line = line_of(node, key, line)
        node = node[key]
    return line


def _compile_parameters(
    node: Mapping[str, Any], line: int, label: str, captures: set[str], report: _Problems
) -> dict[str, Any] | None:
    """A submit's `parameters` as template trees; None (reported) if any is wrong."""
    parameters = node.get("parameters", {})
    p_line = line_of(node, "parameters", line)
    ok = True
    tree: dict[str, Any] = {}
    if not isinstance(parameters, Mapping):
        report(p_line, f"{label}: parameters must be a mapping")
        ok = False
    else:
        tree = {}
        for key, raw in parameters.items():
            key_line = line_of(parameters, key, p_line)
            reserved = reserved_parameter_problem([key])
            if reserved is not None:
                report(key_line, f"{label}: {reserved}")
                ok = False
                continue
            try:
                tree[key] = compile_value(raw)
            except TemplateError as exc:
                report(key_line, f"{label}: parameter {key!r}: {exc}")
                ok = False
                continue
            for t in tree_templates(tree[key]):
                if not _fields_known(t.fields, key_line, label, captures, report):
                    ok = False
    return tree if ok else None


def _template(
    text: str, line: int, label: str, captures: set[str], report: _Problems
) -> Template | None:
    try:
        template = parse_template(text)
    except TemplateError as exc:
        report(line, f"{label}: {exc}")
        return None
    return template if _fields_known(template.fields, line, label, captures, report) else None


def _fields_known(
    fields: tuple[str, ...], line: int, label: str, captures: set[str], report: _Problems
) -> bool:
    ok = True
    for name in fields:
        if "." not in name:
            if name not in captures:
                report(
                    line,
                    f"{label}: unknown template field {{{name}}} "
                    "(neither a field nor a named group of a regex in 'when')",
                )
                ok = False
            continue
        if is_secret(name):
            report(line, f"{label}: template field {{{name}}} is a secret and cannot be used")
            ok = False
            continue
        try:
            event_field(name)
        except FieldError as exc:
            report(line, f"{label}: unknown template field {{{name}}}: {exc}")
            ok = False
    return ok
