"""What a rule's `when` requires of an event's fields, as match index keys (see `index.py`):
alternatives, any one of which holds whenever the condition holds, each the keys per field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .conditions import AllOf, AnyOf, Condition, FieldTest, Not
from .fields import Getter
from .model import Rule
from .operators import Anchor, Regex

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
