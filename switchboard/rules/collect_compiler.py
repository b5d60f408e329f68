"""Compiles a YAML rule's `collect:` node into a `CollectSpec`, every mistake a (line, reason).

The Python callable a `fraction` may name is resolved when the rule loads, and only if it is
allowed (a file beside the rule file or an allowlisted `module:function`, see
`collections.callables`; anything else is refused before anything is imported), so a typo or
a forbidden target is a `path:line: reason` problem. It is never called at load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..collections.callables import CallableRefused, resolve
from .collect import (
    CollectSpec,
    PythonTotal,
    Until,
    parse_duration,
)
from .operators import did_you_mean
from .templates import (
    Template,
    TemplateError,
    ValueTree,
    compile_value,
    parse_template,
    tree_templates,
)
from .yaml_source import line_of, line_of_node

COLLECT_KEYS = ("key", "member", "data", "until", "after_fire", "manifest_file")
UNTIL_KEYS = ("count", "min_count", "fraction", "all_of", "quiet_for")
FRACTION_KEYS = ("of", "at_least")
PYTHON_KEYS = ("python", "args")
AFTER_FIRE = ("ignore", "next_generation")
_CALLABLE = re.compile(r"[\w./-]+(\.py)?:[A-Za-z_]\w*|[A-Za-z_][\w.]*:[A-Za-z_]\w*")

Report = Callable[[int, str], None]
FieldsCheck = Callable[[tuple[str, ...], int], bool]


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
