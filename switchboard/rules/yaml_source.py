"""Safe YAML loading that remembers the line of every mapping key and list item.

Loading builds plain data only (PyYAML's SafeLoader: no tags that construct objects, so no
code runs). Two YAML 1.1 surprises are turned off because they bite rule authors: `on`, `yes`,
`no` and `off` stay text (only true/false are booleans), and dates stay text. Duplicate keys
in one mapping are reported instead of silently keeping the last. Whatever the parser raises
(including RecursionError on absurdly deep nesting) becomes a (line, reason) problem.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class LineDict(dict):
    """A YAML mapping with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A YAML sequence with the 1-based line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


def line_of(container: Any, key: Any, default: int) -> int:
    """The line of `key` (mapping) or index (list) in `container`, or `default` if unknown."""
    if isinstance(container, LineDict):
        return container.key_lines.get(key, default)
    if isinstance(container, LineList) and isinstance(key, int) and key < len(container.item_lines):
        return container.item_lines[key]
    return default


def line_of_node(node: Any, default: int) -> int:
    return getattr(node, "line", 0) or default


_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _RuleLoader(yaml.SafeLoader):
    problems: list[tuple[int, str]]


_RuleLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RuleLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _RuleLoader, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            loader.problems.append((line, "a mapping key must be text"))
            continue
        if key in data:
            loader.problems.append((line, f"duplicate key {key!r}"))
            continue
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_sequence(loader: _RuleLoader, node: yaml.SequenceNode) -> Any:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_RuleLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_RuleLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """Parse one YAML document; returns the data and (line, reason) problems found on the way."""
    loader = _RuleLoader(text)
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return None, [(line, f"invalid YAML: {reason}")]
    except yaml.YAMLError as exc:
        return None, [(1, f"invalid YAML: {exc}")]
    except RecursionError:
        return None, [(_line_reached(loader), "invalid YAML: nested too deeply")]
    except Exception as exc:  # any other parser failure is this file's problem, not a crash
        return None, [(_line_reached(loader), f"invalid YAML: {type(exc).__name__}: {exc}")]
    finally:
        loader.dispose()
    return data, loader.problems


def _line_reached(loader: _RuleLoader) -> int:
    """The 1-based line of the event the parser was at when it failed (1 if unknown)."""
    event = getattr(loader, "current_event", None)
    mark = getattr(event, "start_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    line = getattr(loader, "line", 0)
    return line + 1 if isinstance(line, int) else 1
