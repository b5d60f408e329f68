"""Submit templates: text with `{field}` placeholders that read event fields and regex captures.

Deliberately tiny (not `str.format`): a placeholder is a field name only, no format specs,
conversions, indexing or attribute access, so a template can never run code. `{{` and `}}`
write literal braces. Rule loading refuses placeholders that name a secret field
(`{body.secretKey}`), and a mapping rendered whole has the secrets inside it redacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..secrets import masked
from .fields import ABSENT, SEGMENT


class TemplateError(ValueError):
    """A template that does not parse."""


class MissingValue(LookupError):
    """A placeholder whose field or capture has no value for this event."""

    def __init__(self, field: str) -> None:
        super().__init__(f"template field {{{field}}} has no value for this event")
        self.field = field


@dataclass(frozen=True, slots=True)
class Placeholder:
    field: str


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal texts and placeholders in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.parts if isinstance(p, Placeholder))

    def render(self, lookup: Callable[[str], Any]) -> str:
        """The text with every placeholder replaced; MissingValue if a field is absent."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = lookup(part.field)
            if value is ABSENT or value is None:
                raise MissingValue(part.field)
            out.append(_as_text(value))
        return "".join(out)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(masked(value), sort_keys=True, default=str)


def _check_field(name: str) -> None:
    if not name:
        raise TemplateError("empty placeholder {}")
    if not all(SEGMENT.fullmatch(p) for p in name.split(".")):
        raise TemplateError(
            f"bad placeholder {{{name}}}: use a field name only "
            "(no format specs, conversions, indexing or spaces)"
        )


def parse_template(source: str) -> Template:
    """Parse `source`; TemplateError says what is wrong with it."""
    parts: list[str | Placeholder] = []
    text: list[str] = []
    i = 0
    while i < len(source):
        c = source[i]
        if (c == "{" and source.startswith("{{", i)) or (c == "}" and source.startswith("}}", i)):
            text.append(c)
            i += 2
        elif c == "{":
            end = source.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"unclosed '{{' in template {source!r}")
            name = source[i + 1 : end]
            if "{" in name:
                raise TemplateError(f"unclosed '{{' in template {source!r}")
            _check_field(name)
            if text:
                parts.append("".join(text))
                text = []
            parts.append(Placeholder(name))
            i = end + 1
        elif c == "}":
            raise TemplateError(f"single '}}' in template {source!r} (write '}}}}' for a brace)")
        else:
            text.append(c)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))


# A parameter value: a Template for text, or plain data (possibly nested) holding templates.
ValueTree = Any


def compile_value(value: Any) -> ValueTree:
    """Turn YAML data into a tree where every text is a Template (TemplateError if one is bad)."""
    if isinstance(value, str):
        return parse_template(value)
    if isinstance(value, list):
        return [compile_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: compile_value(v) for k, v in value.items()}
    return value


def tree_templates(tree: ValueTree) -> list[Template]:
    """Every template inside a compiled value tree."""
    if isinstance(tree, Template):
        return [tree]
    if isinstance(tree, list):
        return [t for v in tree for t in tree_templates(v)]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in tree_templates(v)]
    return []


def render_value(tree: ValueTree, lookup: Callable[[str], Any]) -> Any:
    if isinstance(tree, Template):
        return tree.render(lookup)
    if isinstance(tree, list):
        return [render_value(v, lookup) for v in tree]
    if isinstance(tree, dict):
        return {k: render_value(v, lookup) for k, v in tree.items()}
    return tree
