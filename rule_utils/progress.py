"""Collection progress for Python rules and scripts: each call goes to the bound progress store."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from .binding import ProgressStore, current

P = ParamSpec("P")
R = TypeVar("R")


def _on_bound_store(method: Callable[Concatenate[ProgressStore, P], R]) -> Callable[P, R]:
    """A function calling `method` on the store bound at call time, documented as the Protocol.

    The Protocol stays the one statement of each call's signature and meaning; `help()` and
    `inspect.signature` show them without `self`.
    """
    name = method.__name__

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        result: R = getattr(current(), name)(*args, **kwargs)
        return result

    signature = inspect.signature(method)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by inspect
        parameters=list(signature.parameters.values())[1:]
    )
    return call


add_member = _on_bound_store(ProgressStore.add_member)
members = _on_bound_store(ProgressStore.members)
count = _on_bound_store(ProgressStore.count)
counts_with_prefix = _on_bound_store(ProgressStore.counts_with_prefix)
generation = _on_bound_store(ProgressStore.generation)
mark_fired = _on_bound_store(ProgressStore.mark_fired)
reset = _on_bound_store(ProgressStore.reset)
