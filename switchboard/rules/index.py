"""The match index: finds the few declarative rules that can match an event without trying all.

Like aws event-ruler, each rule is filed under necessary conditions on field values: for every
field its `when` requires, the best key the operator offers (see `Anchor` in operators.py):
equality keys (case-folded for `iequals`), prefixes and suffixes, a literal the text must
contain (globs without a literal head or tail, regexes, case-folded for `iglob` / `iregex`),
a closed numeric range (`lt`, `gte`, `between`, ...), the values `anything-but` excludes, and
presence or absence (`exists`). `any` files the rule once per branch and `not` is pushed
inward (De Morgan), so both are indexed wherever their branches are. Rules form a tree per
event kind: one level per field in a fixed order, so a rule is only a candidate when the event
hits its keys on every indexed field. Lookups cost dictionary probes, bisection-like interval
tree steps and a scan of the value's n-grams per field, plus the hits: independent of how many
rules miss. Candidates are then verified in full by the engine, so the index only has to
return a superset of the matches; a rule with no usable key is always a candidate.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import EventKind
from .equality import as_number
from .fields import ABSENT, RAW_NAMESPACES, Getter, Subject, raw_getter
from .index_requirements import Alternative, index_note, requirements
from .index_tables import AffixTable, ButTable, ContainsTable, RangeTable
from .model import Rule
from .operators import Anchor

__all__ = ["RuleIndex", "index_note"]

# Preferred order of fields in the tree (then alphabetical): most selective first.
_FIELD_PRIORITY = {"dataset.name": 0, "file.name": 1, "file.mime_type": 2, "event.routing_key": 3}
# Never file a rule under more than this many key combinations (an `in` list on several fields).
_MAX_PATHS = 64


class _Branch:
    """The children of a node keyed by one field's value."""

    __slots__ = (
        "absent",
        "but",
        "contains",
        "exact",
        "getter",
        "has_numbers",
        "icontains",
        "iexact",
        "iprefix",
        "isuffix",
        "prefix",
        "present",
        "range",
        "suffix",
    )

    _AFFIX_TABLES = ("prefix", "suffix", "iprefix", "isuffix")

    def __init__(self, getter: Getter) -> None:
        self.getter = getter
        self.exact: dict[Any, _Node] = {}
        self.iexact: dict[str, _Node] = {}
        self.prefix: AffixTable[_Node] | None = None
        self.suffix: AffixTable[_Node] | None = None
        self.iprefix: AffixTable[_Node] | None = None
        self.isuffix: AffixTable[_Node] | None = None
        self.contains: ContainsTable[_Node] | None = None
        self.icontains: ContainsTable[_Node] | None = None
        self.range: RangeTable[_Node] | None = None
        self.but: ButTable[_Node] | None = None
        self.present: _Node | None = None
        self.absent: _Node | None = None
        self.has_numbers = False

    def child(self, anchor: Anchor) -> _Node:
        table_name, key = anchor
        if table_name in ("exact", "iexact"):
            table: dict[Any, _Node] = getattr(self, table_name)
            node = table.get(key)
            if node is None:
                node = table[key] = _Node()
                self.has_numbers = self.has_numbers or isinstance(key, tuple)
            return node
        if table_name in ("present", "absent"):
            node = getattr(self, table_name)
            if node is None:
                node = _Node()
                setattr(self, table_name, node)
            return node
        tables = getattr(self, table_name)
        if tables is None:
            if table_name in self._AFFIX_TABLES:
                tables = AffixTable[_Node](suffix=table_name.endswith("suffix"))
            elif table_name == "range":
                tables = RangeTable[_Node]()
            elif table_name == "but":
                tables = ButTable[_Node]()
            else:
                tables = ContainsTable[_Node]()
            setattr(self, table_name, tables)
        found: _Node | None = tables.keys.get(key)
        if found is None:
            found = _Node()
            tables.add(key, found)
        return found

    def matching(self, value: Any, out: list[_Node]) -> None:
        """Append every child whose key the (present) `value` hits."""
        if self.present is not None:
            out.append(self.present)
        if self.but is not None:
            self.but.hits(value, out)
        if isinstance(value, str):
            exact = self.exact
            if exact:
                node = exact.get(value)
                if node is not None:
                    out.append(node)
                if self.has_numbers:
                    number = as_number(value)
                    if number is not None and (node := exact.get(("n", number))) is not None:
                        out.append(node)
            if self.prefix is not None:
                self.prefix.hits(value, out)
            if self.suffix is not None:
                self.suffix.hits(value, out)
            if self.contains is not None:
                self.contains.hits(value, out)
            if (
                self.iexact
                or self.iprefix is not None
                or self.isuffix is not None
                or self.icontains is not None
            ):
                folded = value.casefold()
                if (node := self.iexact.get(folded)) is not None:
                    out.append(node)
                if self.iprefix is not None:
                    self.iprefix.hits(folded, out)
                if self.isuffix is not None:
                    self.isuffix.hits(folded, out)
                if self.icontains is not None:
                    self.icontains.hits(folded, out)
            if self.range is not None and (number := as_number(value)) is not None:
                self.range.hits(number, out)
        elif isinstance(value, bool):
            if (node := self.exact.get(("b", value))) is not None:
                out.append(node)
        elif isinstance(value, int | float):
            number = as_number(value)
            if number is None:
                return
            if self.has_numbers:
                for key in (("n", number), ("sn", number)):
                    if (node := self.exact.get(key)) is not None:
                        out.append(node)
            if self.range is not None:
                self.range.hits(number, out)


# Siblings under one raw mapping (`body.tags.a`, `body.tags.b`, ...) are looked up from the
# mapping's keys once there are this many of them, not by trying every field path.
_GROUP_SIBLINGS = 8


class _SiblingGroup:
    """Branches on fields of one raw mapping (`body.<path>.<key>`), visited by the event's keys.

    A node with thousands of `exists` (or any) tests on distinct keys of one mapping would
    otherwise read every field for every event; this reads the mapping once and visits the
    branches of the keys it holds, plus the `absent` children of the keys it lacks.
    """

    __slots__ = ("absent", "children", "parent")

    def __init__(self, parent: Getter, children: dict[str, _Branch]) -> None:
        self.parent = parent
        self.children = children
        self.absent = [(key, b.absent) for key, b in children.items() if b.absent is not None]

    def visit(self, subject: Subject, pending: list[_Node], hits: list[_Node]) -> None:
        mapping = self.parent(subject)
        if isinstance(mapping, list):  # keys may be list indices: read each field in full
            for branch in self.children.values():
                _visit(branch, branch.getter(subject), pending, hits)
            return
        if not isinstance(mapping, Mapping):
            pending.extend(node for _, node in self.absent)
            return
        children = self.children
        if len(mapping) <= len(children):
            for key, value in mapping.items():
                found = children.get(key)
                if found is not None and value is not None:
                    found.matching(value, hits)
        else:
            for key, branch in children.items():
                value = mapping.get(key)
                if value is not None:
                    branch.matching(value, hits)
        for key, node in self.absent:
            if mapping.get(key) is None:
                pending.append(node)
        if hits:
            pending.extend(hits)
            hits.clear()


def _visit(branch: _Branch, value: Any, pending: list[_Node], hits: list[_Node]) -> None:
    if value is ABSENT:
        if branch.absent is not None:
            pending.append(branch.absent)
        return
    branch.matching(value, hits)
    if hits:
        pending.extend(hits)
        hits.clear()


def _raw_parent(path: str) -> tuple[str, str] | None:
    """(`body.tags`, `a`) for `body.tags.a`; None for fields that are not in a raw mapping."""
    head, _, rest = path.partition(".")
    if head not in RAW_NAMESPACES or not rest:
        return None
    parent, _, key = path.rpartition(".")
    return parent, key


def _parent_getter(parent: str) -> Getter:
    head, _, rest = parent.partition(".")
    return raw_getter(head, tuple(rest.split(".")) if rest else ())


@dataclass(slots=True)
class _Node:
    rules: list[int] = field(default_factory=list)
    branches: dict[str, _Branch] = field(default_factory=dict)
    layout: tuple[list[tuple[str, _Branch]], list[_SiblingGroup]] | None = None

    def regroup(self) -> tuple[list[tuple[str, _Branch]], list[_SiblingGroup]]:
        """The branches to read one by one, and the sibling groups (see `_SiblingGroup`)."""
        siblings: dict[str, dict[str, _Branch]] = {}
        for path, branch in self.branches.items():
            raw = _raw_parent(path)
            if raw is not None:
                siblings.setdefault(raw[0], {})[raw[1]] = branch
        grouped = {p: c for p, c in siblings.items() if len(c) >= _GROUP_SIBLINGS}
        plain = [
            (path, branch)
            for path, branch in self.branches.items()
            if (raw := _raw_parent(path)) is None or raw[0] not in grouped
        ]
        groups = [_SiblingGroup(_parent_getter(p), c) for p, c in grouped.items()]
        self.layout = (plain, groups)
        return self.layout


def _field_order(path: str) -> tuple[int, str]:
    return (_FIELD_PRIORITY.get(path, 100), path)


class RuleIndex:
    """Candidate lookup over the rules given (positions into `rules`), by their `when`."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._roots: dict[EventKind, _Node] = {kind: _Node() for kind in EventKind}
        self.unindexed = 0
        for position, r in enumerate(self.rules):
            alternatives = requirements(r.when)
            if not all(alternatives):
                self.unindexed += 1
                alternatives = [{}]
            paths = [p for groups in alternatives for p in self._paths(groups)]
            for kind in r.kinds:
                for path in paths:
                    self._insert(self._roots[kind], path, position)

    @staticmethod
    def _paths(groups: Alternative) -> list[list[tuple[str, Getter, Anchor]]]:
        fields = sorted(groups, key=_field_order)
        # Drop the widest fields until the number of key combinations is bounded.
        while fields and _product(len(groups[f].anchors) for f in fields) > _MAX_PATHS:
            fields.remove(max(fields, key=lambda f: len(groups[f].anchors)))
        choices = [[(f, groups[f].getter, a) for a in groups[f].anchors] for f in fields]
        return [list(combo) for combo in itertools.product(*choices)]

    @staticmethod
    def _insert(node: _Node, path: list[tuple[str, Getter, Anchor]], position: int) -> None:
        for field_path, getter, anchor in path:
            branch = node.branches.get(field_path)
            if branch is None:
                branch = node.branches[field_path] = _Branch(getter)
                node.layout = None
            node = branch.child(anchor)
        if not node.rules or node.rules[-1] != position:
            node.rules.append(position)

    def candidates(self, subject: Subject) -> list[int]:
        """Positions (ascending) of the rules that may match this event."""
        root = self._roots.get(subject.event.kind)
        if root is None:
            return []
        found: list[int] = []
        values: dict[str, Any] = {}
        pending = [root]
        hits: list[_Node] = []
        while pending:
            node = pending.pop()
            if node.rules:
                found.extend(node.rules)
            plain, groups = node.layout if node.layout is not None else node.regroup()
            for path, branch in plain:
                value = values.get(path, values)
                if value is values:
                    value = values[path] = branch.getter(subject)
                if value is ABSENT:
                    if branch.absent is not None:
                        pending.append(branch.absent)
                    continue
                branch.matching(value, hits)
                if hits:
                    pending.extend(hits)
                    hits.clear()
            for group in groups:
                group.visit(subject, pending, hits)
        if len(found) > 1:
            return sorted(set(found))
        return found


def _product(numbers: Any) -> int:
    total = 1
    for n in numbers:
        total *= n
    return total
