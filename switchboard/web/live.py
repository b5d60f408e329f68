"""What only a running process knows (loop turns, consumer, counts since start), as a port.

The daemon gives the web server a `DaemonLive`; `switchboard web` without a daemon gives a
`StaticLive` holding the rules it could load from the rule files, and no counts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from ..clock import utc_now
from ..rules.model import RuleSet


def version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def rule_version(ruleset: RuleSet | None) -> str:
    """A short content hash of the loaded rule files (and rule names): changes when they do."""
    if ruleset is None:
        return "-"
    digest = hashlib.sha256()
    for path in sorted({r.source.path for r in ruleset if r.source.path}):
        digest.update(path.encode("utf-8", "surrogatepass") + b"\0")
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    for r in ruleset:
        digest.update(r.name.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class RuleCounts:
    """A rule's outcomes since the process started (None: no daemon counts them here)."""

    matches: int | None = None
    errors: int | None = None
    timeouts: int | None = None


@dataclass(frozen=True)
class Check:
    """One readiness or health check: its name, whether it passed, and why (for people)."""

    name: str
    ok: bool
    detail: str


class Live(Protocol):
    """The process's own view; see the module docstring."""

    queue: str
    started_at: datetime
    daemon: bool  # False for `switchboard web` reading a database alone

    def ruleset(self) -> RuleSet | None: ...
    def rule_version(self) -> str: ...
    def rule_counts(self, rule: str) -> RuleCounts: ...
    def dead_letters_since_start(self) -> Mapping[str, int]: ...
    def health(self) -> list[Check]: ...
    def readiness(self) -> list[Check]: ...


@dataclass
class StaticLive:
    """`switchboard web` alone: the rules it could load (or none), healthy as long as it serves."""

    queue: str
    rules: RuleSet | None = None
    started_at: datetime = field(default_factory=utc_now)
    daemon: bool = False
    database_check: Callable[[], Check] | None = None

    def ruleset(self) -> RuleSet | None:
        return self.rules

    def rule_version(self) -> str:
        return rule_version(self.rules)

    def rule_counts(self, rule: str) -> RuleCounts:
        return RuleCounts()

    def dead_letters_since_start(self) -> Mapping[str, int]:
        return {}

    def health(self) -> list[Check]:
        return [Check("server", True, "serving pages from the database; no daemon here")]

    def readiness(self) -> list[Check]:
        return [self.database_check()] if self.database_check is not None else []


class LoopPulse:
    """When a loop last turned (monotonic), written by the loop and read by /healthz."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()  # one float store: safe to read from another thread

    def seconds_since(self) -> float:
        return max(0.0, self._clock() - self._last)


def database_check(engine: Any, where: str) -> Callable[[], Check]:
    """A readiness check that runs `SELECT 1` on `engine` (a SQLAlchemy Engine)."""
    from sqlalchemy import text

    def check() -> Check:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; say which, never the URL's password
            return Check("database", False, f"{where}: {type(exc).__name__}")
        return Check("database", True, where)

    return check
