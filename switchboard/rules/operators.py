r"""The condition operators (equals, prefix, regex, gte, ...): how each tests one field value.

Semantics shared by all operators:
- An absent field (missing, null or unknown) fails every operator except `exists: false`;
  like aws event-ruler, it fails `anything-but` too.
- Text operators (prefix, suffix, glob, regex and their case-insensitive forms) only match text.
  Case-insensitive forms compare `str.casefold()` of both sides (regexes match case-insensitively).
- Regexes run on RE2 (google-re2), whose matching time is linear in the text whatever the
  pattern, so no pattern (`^(a+)+$`) can hang the daemon; they search at most the first
  `REGEX_MAX_TEXT_CHARS` characters of a value (`$` does not match at that cut). A pattern must
  be valid Python syntax that RE2 also supports (no backreferences, lookaround, `\Z`, atomic
  groups or possessive repeats); `\d`, `\w`, `\s` and `\b` are ASCII-only.
- Equality (`equals`, `in`, `anything-but`): when either side is a number, both sides compare as
  numbers (text that `float()` accepts is converted); otherwise the values must be identical
  (two texts are compared as text: "007" is not "7").
- Numeric operators (lt, lte, gt, gte, between) convert the field with `float()` when it is a
  number or numeric text; anything else (including booleans) fails without raising.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .equality import as_number, equal, equality_keys, is_number
from .fields import ABSENT
from .linear_regex import Found, LinearRegex, UnsupportedRegex
from .literals import glob_pieces, regex_literal_prefix, regex_required_literals
from .operands import (
    OperatorError,
    is_scalar,
    number_operand,
    scalar_list,
    show_operand,
    text_operand,
)

# Index anchors: (table, key). A rule can only match if the field's value hits one of them.
# Tables: exact / iexact (equality keys), prefix / suffix / iprefix / isuffix, contains /
# icontains (a literal the text must contain), range ((low, high) closed, may be infinite),
# but (frozenset of equality keys the value must not hit), present and absent (key None).
Anchor = tuple[str, Any]
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Operator:
    """One test on one value; subclasses define `test` and, when they can, index anchors."""

    name: str
    operand: Any
    captures: ClassVar[bool] = False

    def test(self, value: Any) -> bool:
        raise NotImplementedError

    def anchors(self) -> list[Anchor] | None:
        """Necessary index keys for this test, or None when the value can't be looked up."""
        return None

    def negated_anchors(self) -> list[Anchor] | None:
        """Necessary index keys for `not` this test (it holds on absent fields too), or None."""
        return None

    def describe(self) -> str:
        return f"{self.name} {show_operand(self.operand)}"


@dataclass(frozen=True, slots=True)
class Equals(Operator):
    def test(self, value: Any) -> bool:
        return equal(value, self.operand)

    def anchors(self) -> list[Anchor] | None:
        return [("exact", k) for k in equality_keys(self.operand)]

    def negated_anchors(self) -> list[Anchor] | None:
        return [("but", frozenset(equality_keys(self.operand))), ("absent", None)]


@dataclass(frozen=True, slots=True)
class In(Operator):
    def test(self, value: Any) -> bool:
        return any(equal(value, o) for o in self.operand)

    def anchors(self) -> list[Anchor] | None:
        return [("exact", k) for o in self.operand for k in equality_keys(o)]

    def negated_anchors(self) -> list[Anchor] | None:
        return [("but", _keys_of(self.operand)), ("absent", None)]


def _keys_of(operands: Sequence[Any]) -> frozenset[Any]:
    return frozenset(k for o in operands for k in equality_keys(o))


@dataclass(frozen=True, slots=True)
class AnythingBut(Operator):
    def test(self, value: Any) -> bool:
        return not any(equal(value, o) for o in self.operand)

    def anchors(self) -> list[Anchor] | None:
        return [("but", _keys_of(self.operand))]

    def negated_anchors(self) -> list[Anchor] | None:
        return [("exact", k) for k in _keys_of(self.operand)] + [("absent", None)]


@dataclass(frozen=True, slots=True)
class IEquals(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.operand.casefold()

    def anchors(self) -> list[Anchor] | None:
        return [("iexact", self.operand.casefold())]


@dataclass(frozen=True, slots=True)
class Prefix(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.operand)

    def anchors(self) -> list[Anchor] | None:
        return [("prefix", self.operand)] if self.operand else None


@dataclass(frozen=True, slots=True)
class Suffix(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.endswith(self.operand)

    def anchors(self) -> list[Anchor] | None:
        return [("suffix", self.operand)] if self.operand else None


@dataclass(frozen=True, slots=True)
class IPrefix(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold().startswith(self.operand.casefold())

    def anchors(self) -> list[Anchor] | None:
        return [("iprefix", self.operand.casefold())] if self.operand else None


@dataclass(frozen=True, slots=True)
class ISuffix(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold().endswith(self.operand.casefold())

    def anchors(self) -> list[Anchor] | None:
        return [("isuffix", self.operand.casefold())] if self.operand else None


def _glob_anchors(pattern: str, prefix_table: str, suffix_table: str) -> list[Anchor] | None:
    pieces = glob_pieces(pattern)
    if pieces is None:
        return [(prefix_table, pattern)] if pattern else None  # no wildcard: a whole-value test
    head, middle, tail = pieces
    contains_table = "icontains" if prefix_table == "iprefix" else "contains"
    best = max(middle, key=len, default="")
    if len(best) > max(len(head), len(tail)):
        return [(contains_table, best)]
    if len(tail) > len(head):
        return [(suffix_table, tail)]
    return [(prefix_table, head)] if head else None


@dataclass(frozen=True, slots=True)
class Glob(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and fnmatch.fnmatchcase(value, self.operand)

    def anchors(self) -> list[Anchor] | None:
        return _glob_anchors(self.operand, "prefix", "suffix")


@dataclass(frozen=True, slots=True)
class IGlob(Operator):
    def test(self, value: Any) -> bool:
        return isinstance(value, str) and fnmatch.fnmatchcase(
            value.casefold(), self.operand.casefold()
        )

    def anchors(self) -> list[Anchor] | None:
        return _glob_anchors(self.operand.casefold(), "iprefix", "isuffix")


# A regex searches at most this many characters of a value (64 Ki): RE2 is linear in the text,
# and this keeps one huge body field from costing more than a bounded amount per rule. A match
# must lie within them; `$` does not match at the cut.
REGEX_MAX_TEXT_CHARS = 65_536


@dataclass(frozen=True, slots=True)
class Regex(Operator):
    """`re.search` semantics on RE2; named groups become template captures."""

    pattern: LinearRegex | None = None
    captures: ClassVar[bool] = True

    def search(self, value: Any) -> Found | None:
        """The match (with `groupdict()`) within the first REGEX_MAX_TEXT_CHARS of text."""
        if not isinstance(value, str):
            return None
        return self.pattern.search(value, REGEX_MAX_TEXT_CHARS)  # type: ignore[union-attr]

    def test(self, value: Any) -> bool:
        return self.search(value) is not None

    def anchors(self) -> list[Anchor] | None:
        if self.name != "regex":
            literals = regex_required_literals(self.operand, casefold_safe=True)
            return [("icontains", lit.casefold()) for lit in literals] if literals else None
        prefix = regex_literal_prefix(self.operand)
        literals = regex_required_literals(self.operand)
        if prefix and (literals is None or len(prefix) >= max(map(len, literals))):
            return [("prefix", prefix)]
        return [("contains", lit) for lit in literals] if literals else None


@dataclass(frozen=True, slots=True)
class Compare(Operator):
    _TESTS: ClassVar[dict[str, Any]] = {
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }

    def test(self, value: Any) -> bool:
        number = as_number(value)
        return number is not None and self._TESTS[self.name](number, float(self.operand))

    def anchors(self) -> list[Anchor] | None:
        bound = float(self.operand)
        return [("range", (-_INF, bound) if self.name in ("lt", "lte") else (bound, _INF))]


@dataclass(frozen=True, slots=True)
class Between(Operator):
    def test(self, value: Any) -> bool:
        number = as_number(value)
        low, high = self.operand
        return number is not None and float(low) <= number <= float(high)

    def anchors(self) -> list[Anchor] | None:
        low, high = self.operand
        return [("range", (float(low), float(high)))]


@dataclass(frozen=True, slots=True)
class Exists(Operator):
    def test(self, value: Any) -> bool:
        return (value is not ABSENT) is self.operand

    def anchors(self) -> list[Anchor] | None:
        return [("present" if self.operand else "absent", None)]

    def negated_anchors(self) -> list[Anchor] | None:
        return [("absent" if self.operand else "present", None)]


RE2_UNSUPPORTED = "backreferences, lookaround, \\Z, atomic groups, possessive repeats, (?x)"


def _make_regex(name: str, operand: Any) -> Operator:
    """Check the pattern with Python's parser (its messages), then compile it with RE2."""
    text = text_operand(name, operand)
    ignore_case = name == "iregex"
    try:
        re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise OperatorError(f"bad regex {text!r}: {exc}") from None
    try:
        compiled = LinearRegex(text, ignore_case=ignore_case)
    except UnsupportedRegex as exc:
        if "too large" in str(exc) or "too big" in str(exc):
            raise OperatorError(f"regex {text!r} is too large for RE2: {exc}") from None
        raise OperatorError(
            f"regex {text!r} uses syntax RE2 does not support ({RE2_UNSUPPORTED}): {exc}"
        ) from None
    return Regex(name, text, compiled)


def _make_between(name: str, operand: Any) -> Operator:
    if not (isinstance(operand, list) and len(operand) == 2 and all(map(is_number, operand))):
        raise OperatorError(f"between needs [low, high] numbers, got {show_operand(operand)}")
    if operand[0] > operand[1]:
        raise OperatorError(f"between [{operand[0]}, {operand[1]}]: low is greater than high")
    return Between(name, tuple(operand))


def _make_equals(name: str, operand: Any) -> Operator:
    if not is_scalar(operand):
        raise OperatorError(
            f"{name} needs a text, number or boolean, got {show_operand(operand)}"
            + (" (use exists: false for an absent field)" if operand is None else "")
        )
    return Equals(name, operand)


def _make_exists(name: str, operand: Any) -> Operator:
    if not isinstance(operand, bool):
        raise OperatorError(f"exists needs true or false, got {show_operand(operand)}")
    return Exists(name, operand)


_FACTORIES: dict[str, Callable[[str, Any], Operator]] = {
    "equals": _make_equals,
    "in": lambda n, o: In(n, scalar_list(n, o, allow_scalar=False)),
    "anything-but": lambda n, o: AnythingBut(n, scalar_list(n, o, allow_scalar=True)),
    "iequals": lambda n, o: IEquals(n, text_operand(n, o)),
    "prefix": lambda n, o: Prefix(n, text_operand(n, o)),
    "suffix": lambda n, o: Suffix(n, text_operand(n, o)),
    "iprefix": lambda n, o: IPrefix(n, text_operand(n, o)),
    "isuffix": lambda n, o: ISuffix(n, text_operand(n, o)),
    "glob": lambda n, o: Glob(n, text_operand(n, o)),
    "iglob": lambda n, o: IGlob(n, text_operand(n, o)),
    "regex": _make_regex,
    "iregex": _make_regex,
    "lt": lambda n, o: Compare(n, number_operand(n, o)),
    "lte": lambda n, o: Compare(n, number_operand(n, o)),
    "gt": lambda n, o: Compare(n, number_operand(n, o)),
    "gte": lambda n, o: Compare(n, number_operand(n, o)),
    "between": _make_between,
    "exists": _make_exists,
}

OPERATOR_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_operator(name: str, operand: Any) -> Operator:
    """Build operator `name` with its operand; OperatorError explains a bad name or operand."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise OperatorError(f"unknown operator {name!r}{did_you_mean(name, OPERATOR_NAMES)}")
    return factory(name, operand)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
