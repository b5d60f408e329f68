"""The match index: finds the few declarative rules that can match an event without trying all.

Like aws event-ruler, each rule is filed under necessary conditions on field values: for every
field its `when` requires (top level, or every branch of an `any`), the best exact / prefix /
suffix key (case-folded for the i-forms; regexes contribute a literal `^prefix`). Rules form a
tree per event kind: one level per field in a fixed order, so a rule is only a candidate when
the event hits its keys on every indexed field. Lookups cost dictionary probes per field (and per
distinct prefix / suffix length), independent of how many rules share the tree. Candidates are
then verified in full by the engine; a rule with no usable key is always a candidate.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import EventKind
from .conditions import AllOf, AnyOf, Condition, FieldTest
from .fields import ABSENT, Getter, Subject
from .model import Rule
from .operators import Anchor, as_number

# Preferred order of fields in the tree (then alphabetical): most selective first.
_FIELD_PRIORITY = {"dataset.name": 0, "file.name": 1, "file.mime_type": 2, "event.routing_key": 3}
# Never file a rule under more than this many key combinations (an `in` list on several fields).
_MAX_PATHS = 64


@dataclass(frozen=True, slots=True)
class AnchorGroup:
    """Keys on one field, one of which the value must hit for the rule to match."""

    getter: Getter
    anchors: tuple[Anchor, ...]
    score: float


def _score(anchors: Sequence[Anchor]) -> float:
    def one(a: Anchor) -> float:
        table, key = a
        if table in ("exact", "iexact"):
            return 1000.0
        return 10.0 * len(key)

    return min(one(a) for a in anchors) / len(anchors)


def anchor_groups(condition: Condition | None) -> dict[str, AnchorGroup]:
    """Necessary keys of `condition`, per field (empty when nothing can be looked up)."""
    if isinstance(condition, FieldTest):
        anchors = condition.op.anchors()
        if not anchors:
            return {}
        return {condition.path: AnchorGroup(condition.getter, tuple(anchors), _score(anchors))}
    if isinstance(condition, AllOf):
        best: dict[str, AnchorGroup] = {}
        for item in condition.items:
            for path, group in anchor_groups(item).items():
                if path not in best or group.score > best[path].score:
                    best[path] = group
        return best
    if isinstance(condition, AnyOf):
        branches = [anchor_groups(item) for item in condition.items]
        common = set(branches[0]).intersection(*branches[1:]) if branches else set()
        merged = {}
        for path in common:
            anchors = tuple(dict.fromkeys(a for b in branches for a in b[path].anchors))
            merged[path] = AnchorGroup(branches[0][path].getter, anchors, _score(anchors))
        return merged
    return {}  # `not`, or no condition


class _AffixTable:
    """Prefix (or suffix) keys of one field, probed by the lengths that can possibly hit.

    Keys are grouped by their first (last) `head` characters, `head` being the shortest key's
    length (at most 8): a value probes only the lengths of the keys sharing its head.
    """

    __slots__ = ("head", "heads", "keys", "suffix")

    def __init__(self, suffix: bool) -> None:
        self.suffix = suffix
        self.keys: dict[str, _Node] = {}
        self.head = 0
        self.heads: dict[str, tuple[int, ...]] | None = None

    def child(self, key: str) -> _Node:
        node = self.keys.get(key)
        if node is None:
            node = self.keys[key] = _Node()
            self.heads = None  # regrouped on first use, once the index is built
        return node

    def _regroup(self) -> dict[str, tuple[int, ...]]:
        self.head = min(8, *(len(k) for k in self.keys))
        groups: dict[str, set[int]] = {}
        for key in self.keys:
            h = key[-self.head :] if self.suffix else key[: self.head]
            groups.setdefault(h, set()).add(len(key))
        self.heads = {h: tuple(sorted(lengths)) for h, lengths in groups.items()}
        return self.heads

    def hits(self, value: str, out: list[_Node]) -> None:
        heads = self.heads if self.heads is not None else self._regroup()
        head = self.head
        if len(value) < head:
            return
        keys = self.keys
        if self.suffix:
            lengths = heads.get(value[-head:])
            if lengths:
                size = len(value)
                for length in lengths:
                    if length > size:
                        break
                    if (node := keys.get(value[-length:])) is not None:
                        out.append(node)
        else:
            lengths = heads.get(value[:head])
            if lengths:
                size = len(value)
                for length in lengths:
                    if length > size:
                        break
                    if (node := keys.get(value[:length])) is not None:
                        out.append(node)


class _Branch:
    """The children of a node keyed by one field's value."""

    __slots__ = (
        "exact",
        "getter",
        "has_numbers",
        "iexact",
        "iprefix",
        "isuffix",
        "prefix",
        "suffix",
    )

    def __init__(self, getter: Getter) -> None:
        self.getter = getter
        self.exact: dict[Any, _Node] = {}
        self.iexact: dict[str, _Node] = {}
        self.prefix: _AffixTable | None = None
        self.suffix: _AffixTable | None = None
        self.iprefix: _AffixTable | None = None
        self.isuffix: _AffixTable | None = None
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
        affixes = getattr(self, table_name)
        if affixes is None:
            affixes = _AffixTable(suffix=table_name.endswith("suffix"))
            setattr(self, table_name, affixes)
        return affixes.child(key)

    def matching(self, value: Any, out: list[_Node]) -> None:
        """Append every child whose key `value` hits."""
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
            if self.iexact or self.iprefix is not None or self.isuffix is not None:
                folded = value.casefold()
                if (node := self.iexact.get(folded)) is not None:
                    out.append(node)
                if self.iprefix is not None:
                    self.iprefix.hits(folded, out)
                if self.isuffix is not None:
                    self.isuffix.hits(folded, out)
        elif isinstance(value, bool):
            if (node := self.exact.get(("b", value))) is not None:
                out.append(node)
        elif isinstance(value, int | float) and self.has_numbers:
            number = as_number(value)
            for key in (("n", number), ("sn", number)):
                if (node := self.exact.get(key)) is not None:
                    out.append(node)


@dataclass(slots=True)
class _Node:
    rules: list[int] = field(default_factory=list)
    branches: dict[str, _Branch] = field(default_factory=dict)


def _field_order(path: str) -> tuple[int, str]:
    return (_FIELD_PRIORITY.get(path, 100), path)


class RuleIndex:
    """Candidate lookup over the enabled declarative rules given (positions into `rules`)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._roots: dict[EventKind, _Node] = {kind: _Node() for kind in EventKind}
        self.unindexed = 0
        for position, r in enumerate(self.rules):
            groups = anchor_groups(r.when)
            if not groups:
                self.unindexed += 1
            paths = self._paths(groups)
            for kind in r.kinds:
                for path in paths:
                    self._insert(self._roots[kind], path, position)

    @staticmethod
    def _paths(groups: dict[str, AnchorGroup]) -> list[list[tuple[str, Getter, Anchor]]]:
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
            for path, branch in node.branches.items():
                value = values.get(path, values)
                if value is values:
                    value = values[path] = branch.getter(subject)
                if value is ABSENT:
                    continue
                branch.matching(value, hits)
                if hits:
                    pending.extend(hits)
                    hits.clear()
        if len(found) > 1:
            return sorted(set(found))
        return found


def _product(numbers: Any) -> int:
    total = 1
    for n in numbers:
        total *= n
    return total
