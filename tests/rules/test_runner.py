"""The rule runner: one hand-off per batch of calls, a deadline per call, overruns quarantined."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from switchboard.rules.runner import RuleRunner

LONG_S = 30.0
colour: contextvars.ContextVar[str] = contextvars.ContextVar("colour", default="none")


class Stop(BaseException):
    """Stands in for KeyboardInterrupt or SystemExit without interrupting pytest."""


@pytest.fixture
def runner() -> Iterator[RuleRunner]:
    made = RuleRunner(0.3, name="test-rule")
    yield made
    made.close()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    gate = threading.Event()
    yield gate
    gate.set()


def fails() -> None:
    raise ValueError("bad rule")


def test_a_batch_gives_each_call_its_own_outcome_in_order(runner: RuleRunner) -> None:
    outcomes = runner.run_many([("a", lambda: 1, ()), ("b", fails, ()), ("c", str.upper, ("x",))])
    assert [o.status for o in outcomes] == ["ok", "raised", "ok"]
    assert outcomes[0].value == 1
    assert isinstance(outcomes[1].error, ValueError)
    assert outcomes[2].value == "X"


def test_all_calls_of_a_batch_run_on_one_worker_thread(runner: RuleRunner) -> None:
    def where() -> int:
        return threading.get_ident()

    outcomes = runner.run_many([(k, where, ()) for k in "abcd"])
    threads = {o.value for o in outcomes}
    assert len(threads) == 1
    assert threading.get_ident() not in threads


def test_an_empty_batch_has_no_outcomes(runner: RuleRunner) -> None:
    assert runner.run_many([]) == []


def test_each_call_has_its_own_deadline_not_the_batch(release: threading.Event) -> None:
    runner = RuleRunner(2.0)
    try:
        outcomes = runner.run_many([(k, release.wait, (0.8,)) for k in "abc"])
    finally:
        runner.close()
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]


def test_a_call_that_overruns_times_out_and_the_calls_after_it_still_run(
    runner: RuleRunner, release: threading.Event
) -> None:
    ran: list[str] = []
    outcomes = runner.run_many(
        [
            ("before", ran.append, ("before",)),
            ("hangs", release.wait, (LONG_S,)),
            ("after", ran.append, ("after",)),
        ]
    )
    assert [o.status for o in outcomes] == ["ok", "timed_out", "ok"]
    assert ran == ["before", "after"]
    assert runner.abandoned == ["hangs"]


def test_a_rule_still_running_is_not_started_again_until_it_ends(
    runner: RuleRunner, release: threading.Event
) -> None:
    calls: list[int] = []

    def hangs() -> None:
        calls.append(1)
        release.wait(LONG_S)

    runner.run_many([("hangs", hangs, ())])
    again = runner.run_many([("hangs", hangs, ()), ("other", lambda: "fine", ())])
    assert [o.status for o in again] == ["still_running", "ok"]
    assert calls == [1]
    release.set()
    deadline = time.monotonic() + LONG_S
    while runner.abandoned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.abandoned == []
    assert runner.run_many([("hangs", lambda: "back", ())])[0].value == "back"


def test_at_most_one_thread_per_rule_is_stuck_plus_the_live_worker(
    runner: RuleRunner, release: threading.Event
) -> None:
    before = {t for t in threading.enumerate() if t.name == "test-rule"}
    for _ in range(4):
        runner.run_many(
            [("one", release.wait, (LONG_S,)), ("two", release.wait, (LONG_S,)), ("ok", int, ())]
        )
    workers = {t for t in threading.enumerate() if t.name == "test-rule"} - before
    assert len(workers) <= 3
    assert sorted(runner.abandoned) == ["one", "two"]


def test_each_call_runs_in_its_own_copy_of_the_callers_context(runner: RuleRunner) -> None:
    def paint() -> str:
        seen = colour.get()
        colour.set("painted")
        return seen

    colour.set("blue")
    try:
        outcomes = runner.run_many([("a", paint, ()), ("b", paint, ())])
    finally:
        colour.set("none")
    assert [o.value for o in outcomes] == ["blue", "blue"]


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), Stop()])
def test_a_base_exception_raised_by_a_call_is_its_outcome_and_the_runner_goes_on(
    runner: RuleRunner, raised: BaseException
) -> None:
    def stops() -> None:
        raise raised

    outcomes = runner.run_many([("a", int, ()), ("stops", stops, ()), ("b", str, ())])
    assert [o.status for o in outcomes] == ["ok", "raised", "ok"]
    assert outcomes[1].error is raised
    assert runner.run("stops", lambda: "still works").value == "still works"


def test_a_closed_runner_refuses_calls() -> None:
    runner = RuleRunner(0.5)
    runner.run("a", int)
    runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        runner.run_many([("a", int, ())])
