"""Compiles the condition language from YAML data (`when:`, `require:`) into `conditions` trees,
reporting every mistake at its line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..secrets import is_secret
from .conditions import AllOf, AnyOf, Condition, FieldTest, Not, Requirement
from .fields import FieldError, event_field, file_field
from .operands import OperatorError
from .operators import OPERATOR_NAMES, Operator, Regex, did_you_mean, make_operator
from .yaml_source import line_of

Scope = Literal["event", "file"]
Report = Callable[[int, str], None]


@dataclass
class CompileContext:
    """Where a condition is being compiled: its scope, problem reporter and captures found."""

    scope: Scope
    report: Report
    captures: set[str]


def compile_condition(
    node: Any, line: int, ctx: CompileContext, *, capturing: bool = True
) -> Condition | None:
    """Compile a condition (mapping = all of its entries; list = all of its items).

    Problems are reported through `ctx.report`; returns None if there were any. Regex named
    groups are added to `ctx.captures` unless under `not` (they could never hold a value there).
    """
    if isinstance(node, list):
        return _compile_list(node, line, ctx, capturing, "when")
    if not isinstance(node, Mapping) or not node:
        ctx.report(line, "a condition must be a non-empty mapping of field: test")
        return None
    items: list[Condition] = []
    ok = True
    for key, value in node.items():
        key_line = line_of(node, key, line)
        if key in ("all", "any"):
            if not isinstance(value, list):
                ctx.report(key_line, f"'{key}' needs a list of conditions")
                ok = False
                continue
            compiled = _compile_list(value, key_line, ctx, capturing, key)
            if compiled is None:
                ok = False
            elif key == "any" and isinstance(compiled, AllOf):
                items.append(AnyOf(compiled.items))
            elif key == "any":
                items.append(AnyOf((compiled,)))
            else:
                items.append(compiled)
        elif key == "not":
            inner = compile_condition(value, key_line, ctx, capturing=False)
            if inner is None:
                ok = False
            else:
                items.append(Not(inner))
        else:
            test = _compile_field_test(key, value, key_line, ctx, capturing)
            if test is None:
                ok = False
            else:
                items.append(test)
    if not ok:
        return None
    return items[0] if len(items) == 1 else AllOf(tuple(items))


def _compile_list(
    node: list[Any], line: int, ctx: CompileContext, capturing: bool, key: str
) -> Condition | None:
    if not node:
        ctx.report(line, f"'{key}' needs at least one condition")
        return None
    items: list[Condition] = []
    ok = True
    for i, item in enumerate(node):
        compiled = compile_condition(item, line_of(node, i, line), ctx, capturing=capturing)
        if compiled is None:
            ok = False
        else:
            items.append(compiled)
    if not ok:
        return None
    return AllOf(tuple(items)) if len(items) > 1 or key == "any" else items[0]


def _compile_field_test(
    key: Any, value: Any, line: int, ctx: CompileContext, capturing: bool
) -> FieldTest | None:
    if not isinstance(key, str):
        ctx.report(line, f"a field name must be text, not {key!r}")
        return None
    try:
        getter = event_field(key) if ctx.scope == "event" else file_field(key)
    except FieldError as exc:
        ctx.report(line, str(exc))
        return None
    if isinstance(value, Mapping):
        if len(value) != 1:
            names = ", ".join(map(str, value)) or "none"
            ctx.report(line, f"{key}: a test needs exactly one operator, found {names}")
            return None
        ((op_name, operand),) = value.items()
        op_line = line_of(value, op_name, line)
    elif isinstance(value, list):
        op_name, operand, op_line = "in", value, line
    else:
        op_name, operand, op_line = "equals", value, line
    try:
        op = make_operator(op_name, operand)
    except OperatorError as exc:
        if op_name not in OPERATOR_NAMES:
            ctx.report(
                op_line,
                f"{key}: unknown operator {op_name!r}{did_you_mean(op_name, OPERATOR_NAMES)}",
            )
        else:
            ctx.report(op_line, f"{key}: {exc}")
        return None
    named_groups = isinstance(op, Regex) and op.pattern is not None and op.pattern.groupindex
    if named_groups and ctx.scope == "event" and is_secret(key):
        ctx.report(
            op_line,
            f"{key}: a regex on a secret field cannot have named groups "
            "(they would make the secret a template field)",
        )
        return None
    if isinstance(op, Regex) and capturing and op.pattern is not None:
        ctx.captures.update(op.pattern.groupindex)
    return FieldTest(key, getter, op)


COUNT_OPERATORS = ("equals", "in", "anything-but", "lt", "lte", "gt", "gte", "between")


def compile_count(value: Any, line: int, report: Report) -> Operator | None:
    """A count test: a number (equals) or one numeric operator mapping."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((name, operand),) = value.items()
        op_line = line_of(value, name, line)
    else:
        name, operand, op_line = "equals", value, line
    if name not in COUNT_OPERATORS:
        report(op_line, f"count: {name!r} is not a numeric operator ({', '.join(COUNT_OPERATORS)})")
        return None
    try:
        return make_operator(name, operand)
    except OperatorError as exc:
        report(op_line, f"count: {exc}")
        return None


REQUIREMENT_KEYS = ("where", "count", "any", "all", "none")


def compile_requirement(node: Any, line: int, report: Report) -> Requirement | None:
    """One `dataset.files` requirement: optional `where` plus exactly one of count/any/all/none."""
    if not isinstance(node, Mapping):
        report(
            line,
            "a dataset.files requirement must be a mapping: where, plus count, any, all or none",
        )
        return None
    ok = True
    for key in node:
        if key not in REQUIREMENT_KEYS:
            report(
                line_of(node, key, line),
                f"unknown key {key!r} in dataset.files{did_you_mean(key, REQUIREMENT_KEYS)}",
            )
            ok = False
    where = None
    if "where" in node:
        ctx = CompileContext("file", report, set())
        where = compile_condition(node["where"], line_of(node, "where", line), ctx, capturing=False)
        ok = ok and where is not None
    quantifiers = [k for k in ("count", "any", "all", "none") if k in node]
    if len(quantifiers) != 1:
        found = ", ".join(quantifiers) or "none of them"
        report(line, f"dataset.files needs exactly one of count, any, all, none (found {found})")
        return None
    (quantifier,) = quantifiers
    q_line = line_of(node, quantifier, line)
    count = None
    if quantifier == "count":
        count = compile_count(node["count"], q_line, report)
        ok = ok and count is not None
    elif node[quantifier] is not True:
        report(q_line, f"dataset.files {quantifier}: must be true")
        ok = False
    if not ok:
        return None
    return Requirement(where, quantifier, count)  # type: ignore[arg-type]
