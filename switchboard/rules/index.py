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
from .conditions import AllOf, AnyOf, Condition, FieldTest, Not
from .equality import as_number
from .fields import ABSENT, RAW_NAMESPACES, Getter, Subject, walk
from .model import Rule
from .operators import Anchor, Regex

# Preferred order of fields in the tree (then alphabetical): most selective first.
_FIELD_PRIORITY = {"dataset.name": 0, "file.name": 1, "file.mime_type": 2, "event.routing_key": 3}
# Never file a rule under more than this many key combinations (an `in` list on several fields).
_MAX_PATHS = 64
# Never file a rule under more than this many alternatives (`any` branches, `not` of `all`).
_MAX_ALTERNATIVES = 16
# How selective one key of each table is thought to be (affix and contains: per character).
_TABLE_SCORES = {"exact": 1000.0, "iexact": 1000.0, "range": 40.0, "but": 2.0}
_PER_CHARACTER = {"prefix": 10.0, "suffix": 10.0, "iprefix": 10.0, "isuffix": 10.0}
_PER_CHARACTER |= {"contains": 8.0, "icontains": 8.0}


@dataclass(frozen=True, slots=True)
class AnchorGroup:
    """Keys on one field, one of which the value must hit for the rule to match."""

    getter: Getter
    anchors: tuple[Anchor, ...]
    score: float


def _score(anchors: Sequence[Anchor]) -> float:
    def one(a: Anchor) -> float:
        table, key = a
        if table in _PER_CHARACTER:
            return _PER_CHARACTER[table] * len(key)
        return _TABLE_SCORES.get(table, 1.0)  # present / absent: hardly selective

    return min(one(a) for a in anchors) / len(anchors)


# What a condition requires, as alternatives (any one of which holds whenever it holds), each
# the keys per field that alternative needs. [{}]: nothing the index can use.
Alternative = dict[str, AnchorGroup]


def requirements(condition: Condition | None, negated: bool = False) -> list[Alternative]:
    """Necessary keys of `condition` (or of `not condition`), as alternatives (see above)."""
    if isinstance(condition, FieldTest):
        anchors = condition.op.negated_anchors() if negated else condition.op.anchors()
        if not anchors:
            return [{}]
        return [{condition.path: AnchorGroup(condition.getter, tuple(anchors), _score(anchors))}]
    if isinstance(condition, Not):
        return requirements(condition.item, not negated)
    if isinstance(condition, AllOf | AnyOf):
        parts = [requirements(item, negated) for item in condition.items]
        if isinstance(condition, AllOf) != negated:  # all of, or not any of
            return _all_of(parts)
        return _any_of(parts)
    return [{}]  # no condition


def _merged(a: Alternative, b: Alternative) -> Alternative:
    """Both alternatives' keys; where both name a field, the more selective (both are needed)."""
    merged = dict(a)
    for path, group in b.items():
        if path not in merged or group.score > merged[path].score:
            merged[path] = group
    return merged


def _all_of(parts: list[list[Alternative]]) -> list[Alternative]:
    result: list[Alternative] = [{}]
    for alternatives in sorted(parts, key=len):
        if alternatives == [{}]:
            continue
        if len(result) * len(alternatives) > _MAX_ALTERNATIVES:
            continue  # leaving a necessary condition out only widens the candidates
        result = [_merged(a, b) for a in result for b in alternatives]
    return result


def _any_of(parts: list[list[Alternative]]) -> list[Alternative]:
    flat = [a for alternatives in parts for a in alternatives]
    if not flat or any(not a for a in flat):
        return [{}]  # a branch the index cannot narrow down
    if len(flat) <= _MAX_ALTERNATIVES:
        return flat
    # Too many: keep the fields every branch needs, any of their keys.
    common = set(flat[0]).intersection(*flat[1:])
    merged: Alternative = {}
    for path in common:
        anchors = tuple(dict.fromkeys(a for alt in flat for a in alt[path].anchors))
        merged[path] = AnchorGroup(flat[0][path].getter, anchors, _score(anchors))
    return [merged]


def index_note(r: Rule) -> str | None:
    """Why a rule with a `when` is checked on every event (None when the index narrows it)."""
    if r.when is None or all(requirements(r.when)):
        return None
    tests = _field_tests(r.when)
    unindexable = [t for t in tests if isinstance(t.op, Regex) and not t.op.anchors()]
    if unindexable:
        test = unindexable[0]
        return (
            f"{test.path} {test.op.name} {test.op.operand!r} has no literal to index; "
            "checked on every event"
        )
    return "no condition the index can look up; checked on every event"


def _field_tests(condition: Condition) -> list[FieldTest]:
    if isinstance(condition, FieldTest):
        return [condition]
    if isinstance(condition, Not):
        return _field_tests(condition.item)
    if isinstance(condition, AllOf | AnyOf):
        return [t for item in condition.items for t in _field_tests(item)]
    return []


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


def _gram_length(size: int) -> int:
    """The n-gram length a literal of `size` characters is filed under (few lengths to probe)."""
    return 8 if size >= 8 else 4 if size >= 4 else 2 if size >= 2 else 1


class _ContainsTable:
    """Literals a text must contain, found through the n-grams of the value.

    Each literal is filed under one of its n-grams (n = 8, 4, 2 or 1, the largest not longer
    than it): the one fewest literals filed so far share, so similar literals (`_00417_`,
    `_00418_`) spread over buckets. A value probes each of its n-grams for each n in use, then
    checks the literals filed there at that offset. The cost grows with the value's length and
    the bucket sizes, not with the number of literals.
    """

    __slots__ = ("grams", "keys")

    def __init__(self) -> None:
        self.keys: dict[str, _Node] = {}
        self.grams: dict[int, dict[str, list[tuple[str, int, _Node]]]] | None = None

    def child(self, literal: str) -> _Node:
        node = self.keys.get(literal)
        if node is None:
            node = self.keys[literal] = _Node()
            self.grams = None
        return node

    def _regroup(self) -> dict[int, dict[str, list[tuple[str, int, _Node]]]]:
        grams: dict[int, dict[str, list[tuple[str, int, _Node]]]] = {}
        for literal, node in self.keys.items():
            n = _gram_length(len(literal))
            table = grams.setdefault(n, {})
            offset = min(
                range(len(literal) - n + 1),
                key=lambda o: len(table.get(literal[o : o + n], ())),
            )
            table.setdefault(literal[offset : offset + n], []).append((literal, offset, node))
        self.grams = grams
        return grams

    def hits(self, value: str, out: list[_Node]) -> None:
        grams = self.grams if self.grams is not None else self._regroup()
        size = len(value)
        found: set[str] | None = None
        for n, table in grams.items():
            for start in range(size - n + 1):
                bucket = table.get(value[start : start + n])
                if bucket is None:
                    continue
                for literal, offset, node in bucket:
                    begin = start - offset
                    if begin >= 0 and value.startswith(literal, begin):
                        if found is None:
                            found = set()
                        elif literal in found:
                            continue  # a second occurrence of the same literal
                        found.add(literal)
                        out.append(node)


# An interval tree node: center, intervals containing it by ascending low and by descending
# high, then the subtrees of intervals wholly below and wholly above the center.
_Interval = tuple[float, float, "_Node"]
_Tree = tuple[float, list[tuple[float, "_Node"]], list[tuple[float, "_Node"]], Any, Any]


def _interval_tree(items: list[_Interval]) -> _Tree | None:
    if not items:
        return None
    ends = sorted(e for low, high, _ in items for e in (low, high) if abs(e) != float("inf"))
    center = ends[len(ends) // 2] if ends else 0.0
    here = [i for i in items if i[0] <= center <= i[1]]
    below = [i for i in items if i[1] < center]
    above = [i for i in items if i[0] > center]
    by_low = [(low, node) for low, _, node in sorted(here, key=lambda i: i[0])]
    by_high = [(high, node) for _, high, node in sorted(here, key=lambda i: -i[1])]
    return (center, by_low, by_high, _interval_tree(below), _interval_tree(above))


class _RangeTable:
    """Closed numeric ranges; a number finds those containing it in O(log n + hits)."""

    __slots__ = ("keys", "tree")

    def __init__(self) -> None:
        self.keys: dict[tuple[float, float], _Node] = {}
        self.tree: _Tree | None = None

    def child(self, bounds: tuple[float, float]) -> _Node:
        node = self.keys.get(bounds)
        if node is None:
            node = self.keys[bounds] = _Node()
            self.tree = None
        return node

    def hits(self, number: float, out: list[_Node]) -> None:
        if self.tree is None:
            self.tree = _interval_tree([(lo, hi, node) for (lo, hi), node in self.keys.items()])
        tree = self.tree
        while tree is not None:
            center, by_low, by_high, below, above = tree
            if number < center:
                for low, node in by_low:
                    if low > number:
                        break
                    out.append(node)
                tree = below
            elif number > center:
                for high, node in by_high:
                    if high < number:
                        break
                    out.append(node)
                tree = above
            else:
                out.extend(node for _, node in by_low)
                return


def _equality_probes(value: Any) -> list[Any]:
    """The keys (see `equality_keys`) of the operands `value` is equal to."""
    if isinstance(value, bool):
        return [("b", value)]
    if isinstance(value, str):
        number = as_number(value)
        return [value] if number is None else [value, ("n", number)]
    if isinstance(value, int | float):
        number = as_number(value)
        return [] if number is None else [("n", number), ("sn", number)]
    return []


class _ButTable:
    """`anything-but` keys: a present value hits every entry except those excluding it.

    Counted per excluded key: when a key is excluded by at least half of the entries, the
    entries that do not exclude it are precomputed, so a value pays for its hits, not for
    the entries it is kept away from.
    """

    __slots__ = ("complements", "entries", "excluders", "keys")

    def __init__(self) -> None:
        self.keys: dict[frozenset[Any], _Node] = {}
        self.entries: list[_Node] | None = None
        self.excluders: dict[Any, set[int]] = {}
        self.complements: dict[Any, list[int]] = {}

    def child(self, excluded: frozenset[Any]) -> _Node:
        node = self.keys.get(excluded)
        if node is None:
            node = self.keys[excluded] = _Node()
            self.entries = None
        return node

    def _regroup(self) -> list[_Node]:
        entries = list(self.keys.values())
        excluders: dict[Any, set[int]] = {}
        for position, excluded in enumerate(self.keys):
            for key in excluded:
                excluders.setdefault(key, set()).add(position)
        everyone = range(len(entries))
        self.complements = {
            key: [p for p in everyone if p not in positions]
            for key, positions in excluders.items()
            if 2 * len(positions) >= len(entries)
        }
        self.excluders = excluders
        self.entries = entries
        return entries

    def hits(self, value: Any, out: list[_Node]) -> None:
        entries = self.entries if self.entries is not None else self._regroup()
        excluders = self.excluders
        probes = [k for k in _equality_probes(value) if k in excluders]
        if not probes:
            out.extend(entries)
            return
        probes.sort(key=lambda k: -len(excluders[k]))
        others = [excluders[k] for k in probes[1:]]
        first = probes[0]
        complement = self.complements.get(first)
        if complement is None:
            excluded = excluders[first]
            complement = [p for p in range(len(entries)) if p not in excluded]
        out.extend(entries[p] for p in complement if not any(p in o for o in others))


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
        self.prefix: _AffixTable | None = None
        self.suffix: _AffixTable | None = None
        self.iprefix: _AffixTable | None = None
        self.isuffix: _AffixTable | None = None
        self.contains: _ContainsTable | None = None
        self.icontains: _ContainsTable | None = None
        self.range: _RangeTable | None = None
        self.but: _ButTable | None = None
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
                tables = _AffixTable(suffix=table_name.endswith("suffix"))
            elif table_name == "range":
                tables = _RangeTable()
            elif table_name == "but":
                tables = _ButTable()
            else:
                tables = _ContainsTable()
            setattr(self, table_name, tables)
        child: _Node = tables.child(key)
        return child

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
    parts = tuple(rest.split(".")) if rest else ()
    if head == "body":
        return lambda s: walk(s.event.body, parts)
    return lambda s: walk(s.event.parameters, parts)


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
