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

from .fields import ABSENT
from .linear_regex import Found, LinearRegex, UnsupportedRegex

# Index anchors: (table, key). A rule can only match if the field's value hits one of them.
# Tables: exact / iexact (equality keys), prefix / suffix / iprefix / isuffix, contains /
# icontains (a literal the text must contain), range ((low, high) closed, may be infinite),
# but (frozenset of equality keys the value must not hit), present and absent (key None).
Anchor = tuple[str, Any]
_INF = float("inf")


class OperatorError(ValueError):
    """An operator given an operand it cannot use."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """`value` as a float when it is a number or numeric text, else None (NaN counts as None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if number != number else number


def equal(value: Any, operand: Any) -> bool:
    """Equality as rules define it (see the module docstring)."""
    if is_number(operand) or is_number(value):
        a, b = as_number(value), as_number(operand)
        return a is not None and a == b
    return type(value) is type(operand) and value == operand


def equality_keys(operand: Any) -> list[Any]:
    """Index keys under which a value equal to `operand` will look itself up."""
    if isinstance(operand, bool):
        return [("b", operand)]
    if is_number(operand):
        number = as_number(operand)
        return [] if number is None else [("n", number)]
    keys: list[Any] = [operand]
    number = as_number(operand)
    if number is not None:
        keys.append(("sn", number))  # text operand that numbers (not texts) compare equal to
    return keys


def _show(operand: Any) -> str:
    """An operand as rule authors wrote it (true/false, not Python's True/False)."""
    if isinstance(operand, bool):
        return "true" if operand else "false"
    return repr(list(operand)) if isinstance(operand, tuple) else repr(operand)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


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
        return f"{self.name} {_show(self.operand)}"


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


def glob_pieces(pattern: str) -> tuple[str, list[str], str] | None:
    """(head, middle literals, tail) of an fnmatch pattern; None when it has no wildcard.

    Classes are parsed as `fnmatch.translate` does (a `[` without its `]` is a literal).
    """
    runs: list[str] = []
    current: list[str] = []
    wild = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in "*?":
            runs.append("".join(current))
            current, wild = [], True
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                current.append(c)  # no closing bracket: a literal [
                i += 1
            else:
                runs.append("".join(current))
                current, wild = [], True
                i = j + 1
        else:
            current.append(c)
            i += 1
    runs.append("".join(current))
    if not wild:
        return None
    return runs[0], [r for r in runs[1:-1] if r], runs[-1]


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


_REGEX_META = ".^$*+?{}[]|()\\"


def _has_top_level_alternation(pattern: str) -> bool:
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # a leading ] is literal inside a class
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


def regex_literal_prefix(pattern: str) -> str:
    """The text every match of a `^`-anchored regex must start with ("" when unsure)."""
    if pattern.startswith("\\A"):
        body = pattern[2:]
    elif pattern.startswith("^"):
        body = pattern[1:]
    else:
        return ""
    if _has_top_level_alternation(pattern):
        return ""
    literal: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            escaped = body[i + 1 : i + 2]
            if not escaped or escaped.isalnum() or not escaped.isascii():
                break  # \d, \w, \b, \1, \x41 ...: not a plain character
            literal.append(escaped)
            i += 2
            continue
        if c in _REGEX_META:
            if c in "*?{" and literal:
                literal.pop()  # the previous character is optional or repeated zero times
            break
        literal.append(c)
        i += 1
    return "".join(literal)


# A regex searches at most this many characters of a value (64 Ki): RE2 is linear in the text,
# and this keeps one huge body field from costing more than a bounded amount per rule. A match
# must lie within them; `$` does not match at the cut.
REGEX_MAX_TEXT_CHARS = 65_536
_QUANTIFIER = re.compile(r"\{\d*(,\d*)?\}")
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]")


def _skip_group(pattern: str, i: int) -> int:
    """The index after the group opening at `i` (classes and escapes inside it skipped)."""
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _skip_class(pattern, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at `i`."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
            continue
        if pattern[j] == "]":
            return j + 1
        j += 1
    return j


def _quantifier_end(pattern: str, i: int) -> int:
    """The index after a quantifier starting at `i` (and its lazy/possessive mark), or `i`."""
    c = pattern[i : i + 1]
    if c in ("*", "+", "?"):
        end = i + 1
    elif c == "{" and (m := _QUANTIFIER.match(pattern, i)) is not None:
        end = m.end()
    else:
        return i
    return end + 1 if pattern[end : end + 1] in ("?", "+") else end


def _branch_literals(body: str) -> list[str]:
    """Literal runs every match of one alternation-free regex branch must contain."""
    runs: list[str] = []
    current: list[str] = []

    def cut() -> None:
        if current:
            runs.append("".join(current))
            current.clear()

    i = 0
    while i < len(body):
        c = body[i]
        char: str | None = None
        if c == "\\":
            escaped = body[i + 1 : i + 2]
            if escaped and not escaped.isalnum() and escaped.isascii():
                char, i = escaped, i + 2
            else:
                cut()
                i += 2  # \d, \w, \b, \1, \x41 ...: not one plain character
                continue
        elif c == "(":
            cut()
            i = _skip_group(body, i)
        elif c == "[":
            cut()
            i = _skip_class(body, i)
        elif c in ".^$":
            cut()
            i += 1
        elif c in "*+?{" and (end := _quantifier_end(body, i)) > i:
            cut()  # after a group, class or dot: nothing literal to take back
            i = end
            continue
        else:
            char, i = c, i + 1
        if char is None:
            end = _quantifier_end(body, i)  # a quantified group or class
            i = end
            continue
        end = _quantifier_end(body, i)
        if end == i:
            current.append(char)
            continue
        if body[i] == "+":
            current.append(char)  # required once, maybe repeated: the run stops after it
        cut()
        i = end
    cut()
    return runs


def _top_level_branches(pattern: str) -> list[str]:
    branches, start, i = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
        elif c == "(":
            i = _skip_group(pattern, i)
        elif c == "[":
            i = _skip_class(pattern, i)
        elif c == "|":
            branches.append(pattern[start:i])
            start = i = i + 1
        else:
            i += 1
    branches.append(pattern[start:])
    return branches


def regex_required_literals(pattern: str, *, casefold_safe: bool = False) -> list[str] | None:
    """One literal per top-level branch that a match of that branch must contain, or None.

    None when some branch has no literal or the pattern sets inline flags (they change what a
    literal means). `casefold_safe` keeps only characters whose `re.IGNORECASE` matches are
    exactly the characters with the same `str.casefold()` (printable ASCII except i and I:
    `i` also matches dotless and dotted capital I).
    """
    if _INLINE_FLAGS.search(pattern):
        return None
    literals = []
    for branch in _top_level_branches(pattern):
        runs = _branch_literals(branch)
        if casefold_safe:
            runs = [piece for run in runs for piece in re.split(r"[^ -hj-~]|[iI]", run)]
        best = max(runs, key=len, default="")
        if not best:
            return None
        literals.append(best)
    return literals


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


def _text_operand(name: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise OperatorError(f"{name} needs text, got {_show(operand)}")
    return operand


def _number_operand(name: str, operand: Any) -> float | int:
    if not is_number(operand):
        raise OperatorError(f"{name} needs a number, got {_show(operand)}")
    number: float | int = operand
    return number


def _scalar_list(name: str, operand: Any, *, allow_scalar: bool) -> tuple[Any, ...]:
    if allow_scalar and _is_scalar(operand):
        return (operand,)
    if not isinstance(operand, list) or not operand:
        raise OperatorError(f"{name} needs a non-empty list of values, got {_show(operand)}")
    for item in operand:
        if not _is_scalar(item):
            raise OperatorError(f"{name} values must be text, numbers or booleans, not {item!r}")
    return tuple(operand)


RE2_UNSUPPORTED = "backreferences, lookaround, \\Z, atomic groups, possessive repeats, (?x)"


def _make_regex(name: str, operand: Any) -> Operator:
    """Check the pattern with Python's parser (its messages), then compile it with RE2."""
    text = _text_operand(name, operand)
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
        raise OperatorError(f"between needs [low, high] numbers, got {_show(operand)}")
    if operand[0] > operand[1]:
        raise OperatorError(f"between [{operand[0]}, {operand[1]}]: low is greater than high")
    return Between(name, tuple(operand))


def _make_equals(name: str, operand: Any) -> Operator:
    if not _is_scalar(operand):
        raise OperatorError(
            f"{name} needs a text, number or boolean, got {_show(operand)}"
            + (" (use exists: false for an absent field)" if operand is None else "")
        )
    return Equals(name, operand)


def _make_exists(name: str, operand: Any) -> Operator:
    if not isinstance(operand, bool):
        raise OperatorError(f"exists needs true or false, got {_show(operand)}")
    return Exists(name, operand)


_FACTORIES: dict[str, Callable[[str, Any], Operator]] = {
    "equals": _make_equals,
    "in": lambda n, o: In(n, _scalar_list(n, o, allow_scalar=False)),
    "anything-but": lambda n, o: AnythingBut(n, _scalar_list(n, o, allow_scalar=True)),
    "iequals": lambda n, o: IEquals(n, _text_operand(n, o)),
    "prefix": lambda n, o: Prefix(n, _text_operand(n, o)),
    "suffix": lambda n, o: Suffix(n, _text_operand(n, o)),
    "iprefix": lambda n, o: IPrefix(n, _text_operand(n, o)),
    "isuffix": lambda n, o: ISuffix(n, _text_operand(n, o)),
    "glob": lambda n, o: Glob(n, _text_operand(n, o)),
    "iglob": lambda n, o: IGlob(n, _text_operand(n, o)),
    "regex": _make_regex,
    "iregex": _make_regex,
    "lt": lambda n, o: Compare(n, _number_operand(n, o)),
    "lte": lambda n, o: Compare(n, _number_operand(n, o)),
    "gt": lambda n, o: Compare(n, _number_operand(n, o)),
    "gte": lambda n, o: Compare(n, _number_operand(n, o)),
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
