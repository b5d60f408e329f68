"""Which progress store rule_utils talks to right now: a context variable set by `bound()`."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable


class NotBoundError(RuntimeError):
    """A rule_utils function was called with no progress store bound."""


@runtime_checkable
class ProgressStore(Protocol):
    """What rule_utils needs: `switchboard.store.progress.Progress` or a test fake.

    The one statement of the progress interface: its implementations subclass it and inherit
    these docstrings, and `rule_utils.progress` forwards each call to the bound store.
    """

    def add_member(
        self,
        rule: str,
        key: str,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        """Add `member` to the current generation of (rule, key), opening the collection if
        new; False if it was already there."""

    def members(
        self, key: str, *, rule: str | None = None, generation: int | None = None
    ) -> dict[str, Mapping[str, Any] | None]:
        """Members of `key` (sorted) with their data, of the current generation unless one is
        given; rule=None spans every rule using the key."""

    def count(self, key: str, *, rule: str | None = None) -> int:
        """How many distinct members `key` has in its current generation (across rules when
        rule is None)."""

    def counts_with_prefix(self, prefix: str, *, rule: str | None = None) -> dict[str, int]:
        """Member count per key, for every key starting with `prefix` (current generations)."""

    def generation(self, rule: str, key: str) -> int:
        """The current generation of (rule, key); 0 for a collection never seen."""

    def mark_fired(
        self,
        rule: str,
        key: str,
        generation: int,
        *,
        manifest_id: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        """Flip (rule, key, generation) from open to fired; True only for the caller that did."""

    def reset(self, rule: str, key: str) -> int:
        """Re-arm (rule, key): open its next generation and return that generation's number."""


NOT_BOUND = (
    "rule_utils is not bound to a database: inside Switchboard the daemon binds it around rule "
    "evaluation; in a script use `with rule_utils.connect(DATABASE_URL):`; in a test use "
    "`with rule_utils.bound(switchboard.testing.InMemoryProgress()):`"
)
ENDED = (
    "rule_utils was called after its binding ended (a rule that overran its timeout and kept "
    "running?): the transaction it was bound to is gone, so nothing was read or written"
)


class Binding:
    """One `bound()` block: the store plus whether the block is still open.

    A rule abandoned by the engine's timeout keeps a copy of the context; once the block has
    ended its calls fail instead of touching a transaction that now belongs to someone else.
    """

    __slots__ = ("_open", "progress")

    def __init__(self, progress: ProgressStore) -> None:
        self.progress = progress
        self._open = True

    def close(self) -> None:
        self._open = False

    @property
    def open(self) -> bool:
        return self._open


_current: contextvars.ContextVar[Binding | None] = contextvars.ContextVar(
    "rule_utils_binding", default=None
)


@contextmanager
def bound(progress: ProgressStore) -> Iterator[ProgressStore]:
    """Make every rule_utils call inside the block use `progress` (this context and its copies).

    The daemon's processor wraps rule evaluation in it with the unit of work's `Progress`; the
    engine's rule runner copies the context into its worker thread, so rules see it too.
    """
    if not isinstance(progress, ProgressStore):
        raise TypeError(f"rule_utils.bound needs a progress store, not {type(progress).__name__}")
    binding = Binding(progress)
    token = _current.set(binding)
    try:
        yield progress
    finally:
        binding.close()
        _current.reset(token)


_unbound_reason = NOT_BOUND


def refuse_unbound(reason: str) -> None:
    """Make every unbound call in this process fail with `reason` instead of NOT_BOUND: an
    isolated rule's worker process has no transaction to bind, and should say so."""
    global _unbound_reason
    _unbound_reason = reason


def current() -> ProgressStore:
    """The progress store bound here; NotBoundError if none is, or if its block has ended."""
    binding = _current.get()
    if binding is None:
        raise NotBoundError(_unbound_reason)
    if not binding.open:
        raise NotBoundError(ENDED)
    return binding.progress


def is_bound() -> bool:
    """Whether a rule_utils call here would reach a progress store."""
    binding = _current.get()
    return binding is not None and binding.open
