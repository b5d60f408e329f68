"""rule_utils finds its store through `bound()`: in this context and its copies, nowhere else."""

from __future__ import annotations

import contextvars
import threading

import pytest

import rule_utils
from switchboard.testing import InMemoryProgress


def test_a_call_with_nothing_bound_says_how_to_bind() -> None:
    with pytest.raises(rule_utils.NotBoundError, match=r"rule_utils\.connect"):
        rule_utils.count("day/1")
    with pytest.raises(rule_utils.NotBoundError, match="not bound"):
        rule_utils.retrieveProgressFromDB("Full Field -- RGB GeoTIFFs - 2017-05-01")


def test_calls_inside_the_block_reach_the_bound_store() -> None:
    progress = InMemoryProgress()
    with rule_utils.bound(progress):
        assert rule_utils.is_bound()
        assert rule_utils.add_member("mosaic", "day/1", "f1")
    assert progress.count("day/1") == 1
    assert not rule_utils.is_bound()


def test_a_copied_context_on_another_thread_sees_the_binding() -> None:
    progress = InMemoryProgress()
    seen: list[int] = []
    with rule_utils.bound(progress):
        rule_utils.add_member("mosaic", "day/1", "f1")
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(lambda: seen.append(rule_utils.count("day/1")),)
        )
        thread.start()
        thread.join()
    assert seen == [1]


def test_a_copy_used_after_the_block_ended_is_refused_instead_of_writing() -> None:
    progress = InMemoryProgress()
    with rule_utils.bound(progress):
        late = contextvars.copy_context()
    with pytest.raises(rule_utils.NotBoundError, match="after its binding ended"):
        late.run(rule_utils.add_member, "mosaic", "day/1", "f1")
    assert progress.count("day/1") == 0


def test_nested_bindings_restore_the_outer_one() -> None:
    outer, inner = InMemoryProgress(), InMemoryProgress()
    with rule_utils.bound(outer):
        with rule_utils.bound(inner):
            rule_utils.add_member("r", "k", "inner")
        rule_utils.add_member("r", "k", "outer")
    assert list(inner.members("k")) == ["inner"]
    assert list(outer.members("k")) == ["outer"]


def test_binding_something_that_is_not_a_progress_store_is_refused() -> None:
    with pytest.raises(TypeError, match="progress store"), rule_utils.bound(object()):  # type: ignore[arg-type]
        pass
