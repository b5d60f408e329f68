"""Where a rule or a problem was written: a file path and a 1-based line, shown as `path:line`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in a rule file; `line` 0 means the line is not known.

    Kept apart instead of as one `path:line` string, so a path holding a colon is never cut in
    the wrong place when the two are needed separately (a `Problem`, an exception's file).
    """

    path: str
    line: int = 0

    def __str__(self) -> str:
        if not self.path:
            return ""
        return f"{self.path}:{self.line}"

    def __bool__(self) -> bool:
        return bool(self.path)


NOWHERE = SourceLocation("", 0)  # a rule built from a callable without code (no file to name)
