"""Safe YAML loading that remembers the line of every mapping key and list item.

Loading builds plain data only (PyYAML's SafeLoader: no tags that construct objects, so no
code runs). Two YAML 1.1 surprises are turned off because they bite rule authors: `on`, `yes`,
`no` and `off` stay text (only true/false are booleans), and dates stay text. Duplicate keys
in one mapping are reported instead of silently keeping the last. Whatever the parser raises
(including RecursionError on absurdly deep nesting) becomes a (line, reason) problem.

Loading is bounded, so a small hostile file cannot take the memory or time of a huge one (the
"billion laughs" alias bomb): a file holds at most `MAX_YAML_BYTES`, at most `MAX_YAML_NODES`
nodes (scalars, lists, mappings), and its aliases (`*name`, also in `<<: *name` merge keys)
may repeat at most `MAX_ALIAS_NODES` nodes in all; an alias inside its own anchor is refused.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class LineDict(dict[Any, Any]):
    """A YAML mapping with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
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


MAX_YAML_BYTES = 8 * 1024 * 1024
MAX_YAML_NODES = 500_000
MAX_ALIAS_NODES = 10_000


class _RuleLoader(yaml.SafeLoader):
    """SafeLoader with our scalars, line-keeping containers and bounded composition."""

    problems: list[tuple[int, str]]

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.problems = []
        self._node_count = 0
        self._alias_node_count = 0
        self._sizes: dict[int, int] = {}  # id(finished node) -> its node count, aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._count_alias(event, target)
            return super().compose_node(parent, index)
        self._node_count += 1
        if self._node_count > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_YAML_NODES:,} nodes; split the rules into several files",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            )
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node

    def _count_alias(self, event: Any, target: Any) -> None:
        size = self._sizes.get(id(target))
        if size is None:  # the anchor's node is still being composed
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} is inside its own anchor", event.start_mark
            )
        self._alias_node_count += size
        if self._alias_node_count > MAX_ALIAS_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases repeat more than {MAX_ALIAS_NODES:,} nodes (at *{event.anchor}); "
                "write the repeated parts out or use fewer aliases",
                event.start_mark,
            )


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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


def size_problem(head: bytes, size: int) -> tuple[int, str] | None:
    """(line, reason) when a file of `size` bytes starting with `head` is over MAX_YAML_BYTES:
    the line is where the limit falls (`head` needs at least MAX_YAML_BYTES bytes then)."""
    if size <= MAX_YAML_BYTES:
        return None
    line = head[:MAX_YAML_BYTES].count(b"\n") + 1
    return line, (
        f"file is {size:,} bytes, more than the {MAX_YAML_BYTES:,} a rule file may hold; "
        "split the rules into several files"
    )


def load_yaml(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """Parse one YAML document; returns the data and (line, reason) problems found on the way."""
    encoded = text.encode("utf-8", "surrogatepass")
    too_big = size_problem(encoded, len(encoded))
    if too_big is not None:
        return None, [too_big]
    loader = _RuleLoader(text)
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
