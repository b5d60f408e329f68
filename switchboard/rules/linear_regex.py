"""Rule regexes on RE2: `re.search` semantics on text, in time linear in the text's length.

RE2 (google-re2) never backtracks, so no pattern, `^(a+)+$` included, can keep the daemon
busy for longer than one pass over the text. The package's `re`-like wrapper costs about ten
times what Python's `re` does per search, so this calls RE2's core (`re2._re2.RE2.Match`)
directly: encode once, match once, decode only the named groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import re2
from re2 import _re2

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_NO_SPAN = (-1, -1)


class UnsupportedRegex(ValueError):
    """A pattern RE2 refuses (unsupported syntax, or too large); the message is RE2's."""


class Found:
    """A successful search: the named groups that took part, like `re.Match.groupdict()`."""

    __slots__ = ("_groups",)

    def __init__(self, groups: dict[str, str | None]) -> None:
        self._groups = groups

    def groupdict(self) -> dict[str, str | None]:
        return self._groups


class LinearRegex:
    """One compiled pattern; `search(text)` finds its first match anywhere in `text`."""

    __slots__ = ("_names", "_regexp", "groupindex", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print every refused pattern on stderr
        options.case_sensitive = not ignore_case
        self._regexp = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), options)
        if not self._regexp.ok():
            raise UnsupportedRegex(self._regexp.error().decode("utf-8", "replace"))
        self.pattern = pattern
        named = sorted((i, n.decode("utf-8")) for n, i in self._regexp.NamedCapturingGroups())
        self._names: tuple[tuple[int, str], ...] = tuple(named)
        self.groupindex: Mapping[str, int] = MappingProxyType({n: i for i, n in named})

    def search(self, text: str, max_chars: int | None = None) -> Found | None:
        """The first match; with `max_chars`, one that lies within the first `max_chars`
        characters (the character after them is kept as context, so `$` and `\b` do not take
        the cut for the end of the text)."""
        if max_chars is not None and len(text) > max_chars:
            data = _utf8(text[:max_chars])
            end = len(data)
            data += _utf8(text[max_chars])
        else:
            data = _utf8(text)
            end = len(data)
        spans = self._regexp.Match(_UNANCHORED, data, 0, end)
        if spans[0] == _NO_SPAN:
            return None
        groups: dict[str, str | None] = {}
        for index, name in self._names:
            start, end = spans[index]
            groups[name] = None if start < 0 else data[start:end].decode("utf-8", "replace")
        return Found(groups)

    def __repr__(self) -> str:
        return f"LinearRegex({self.pattern!r})"


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate from a JSON "\ud800" is matched as bytes, not an error
    return text.encode("utf-8", "surrogatepass")
