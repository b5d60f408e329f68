"""The literal text every match of a glob or a regex must hold: the keys the match index files
such rules under (a prefix, a suffix, or a piece the value must contain)."""

from __future__ import annotations

import re


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
