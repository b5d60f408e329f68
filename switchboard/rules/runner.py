"""Runs Python rules on worker threads so a rule that hangs costs its timeout, never the engine.

Rules run one at a time (they may share the event's database transaction, which is not
thread-safe). `run_many` hands all of one event's rules to a daemon worker thread in one go
(one thread handoff per event, not per rule) and waits; each rule has its own deadline of
`timeout_s`, counted from when the rule before it ended (the first: from when a worker took
the batch).
A rule that overruns is abandoned: its thread is left to finish (Python cannot kill it), the
rules after it are taken back from that thread and handed to a replacement worker, so they
still run. Bound: while a rule's abandoned call is still running, that rule is not started
again (its later calls report it as still running), so at most one thread per Python rule can
be stuck, plus the one live worker; the threads are daemons, so they never hold up process
exit. Each call runs in its own copy of the caller's `contextvars` context.

Whatever a rule raises is that call's outcome, `BaseException`s included: `sys.exit()`,
`raise KeyboardInterrupt` or a stray `GeneratorExit` in rule code are the rule's error, never
re-raised into the engine. Real signals are no such exception: Python delivers them to the main
thread, and rules run on worker threads.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# "killed" and "died" come from the isolated runner (rules in worker processes)
Status = Literal["ok", "raised", "timed_out", "still_running", "killed", "died"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    value: Any = None  # the return value, or the exception raised
    error: BaseException | None = None


_RETURNED_NONE = Outcome("ok")  # most calls' outcome (a rule with nothing to do), shared
Call = tuple[str, Callable[..., Any], tuple[Any, ...]]  # (rule key, function, arguments)


class _Call:
    """One rule call of a batch; `ended` once it returned, raised or was skipped."""

    __slots__ = ("args", "context", "ended", "function", "key", "outcome")

    def __init__(self, key: str, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.key = key
        self.function = function
        self.args = args
        self.context = contextvars.copy_context()
        self.outcome: Outcome | None = None
        self.ended = False


class _Batch:
    """Calls handed to one worker; the caller and the worker meet on `cond`."""

    __slots__ = ("calls", "cond", "done", "finished", "last_ended_at", "lock", "stop_at")

    def __init__(self, calls: list[_Call]) -> None:
        self.calls = calls
        self.lock = threading.Lock()  # `cond`'s: the worker's per-call updates take it directly
        self.cond = threading.Condition(self.lock)
        self.done = 0  # calls[:done] have ended; calls[done] is running (or about to start)
        self.last_ended_at = time.monotonic()  # when calls[done] could start
        self.stop_at: int | None = None  # set by the caller: abandon calls[stop_at:]
        self.finished = False  # the worker is through with this batch


class RuleRunner:
    """Call functions on a worker thread with a timeout each, quarantining calls that overran."""

    def __init__(self, timeout_s: float, *, name: str = "switchboard-rule") -> None:
        self.timeout_s = timeout_s
        self._name = name
        self._tasks: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle_workers = 0
        self._abandoned: dict[str, _Call] = {}
        self._closed = False

    @property
    def abandoned(self) -> list[str]:
        """Keys whose timed-out call is still running."""
        return [k for k, c in self._abandoned.items() if not c.ended]

    def run(self, key: str, function: Callable[..., Any], *args: Any) -> Outcome:
        """Run `function(*args)` for the rule `key`, waiting at most `timeout_s`."""
        return self.run_many([(key, function, args)])[0]

    def run_many(self, calls: Sequence[Call]) -> list[Outcome]:
        """Run the calls one after another on one worker, each waited on at most `timeout_s`;
        their outcomes, in order. A call that overruns is `timed_out` and the rest still run."""
        every = [_Call(key, function, tuple(args)) for key, function, args in calls]
        pending = every
        while pending:
            pending = self._hand_over(self._runnable(pending))
        return [call.outcome or Outcome("timed_out") for call in every]

    def _runnable(self, calls: list[_Call]) -> list[_Call]:
        """The calls to hand over; a call whose rule has an abandoned call still running is
        answered `still_running` instead (and so is a second call of one rule after it)."""
        runnable = []
        for call in calls:
            previous = self._abandoned.get(call.key)
            if previous is not None:
                if not previous.ended:
                    call.outcome = Outcome("still_running")
                    continue
                del self._abandoned[call.key]
            runnable.append(call)
        return runnable

    def _hand_over(self, calls: list[_Call]) -> list[_Call]:
        """Run `calls` on a worker; the calls left to run after one of them overran."""
        if not calls:
            return []
        batch = _Batch(calls)
        with self._lock:
            if self._closed:
                raise RuntimeError("RuleRunner is closed")
            if self._idle_workers == 0:
                self._start_worker()
            else:
                self._idle_workers -= 1
        self._tasks.put(batch)
        with batch.cond:
            while not batch.finished:
                remaining = batch.last_ended_at + self.timeout_s - time.monotonic()
                if remaining <= 0:
                    overran = batch.calls[batch.done]
                    batch.stop_at = batch.done  # its worker retires once the call ends
                    overran.outcome = Outcome("timed_out")
                    self._abandoned[overran.key] = overran
                    return batch.calls[batch.done + 1 :]
                batch.cond.wait(remaining)
        return []

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        thread.start()

    def _work(self) -> None:
        while True:
            batch = self._tasks.get()
            if batch is None or self._run(batch):
                return  # closed, or abandoned: the caller handed the rest to a replacement

    def _run(self, batch: _Batch) -> bool:
        """Run a batch's calls in order on this thread; True if the caller abandoned it."""
        with batch.cond:
            if batch.stop_at is not None:  # overran before this worker even picked it up
                batch.calls[batch.stop_at].ended = True
                return True
            batch.last_ended_at = time.monotonic()
        for index, call in enumerate(batch.calls):
            try:
                value = call.context.run(call.function, *call.args)
                outcome = _RETURNED_NONE if value is None else Outcome("ok", value)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the rule's error
                outcome = Outcome("raised", exc, exc)
            with batch.lock:  # (the condition's lock, without its Python-level __enter__)
                call.ended = True
                if batch.stop_at is not None:  # set by the watchdog thread meanwhile
                    return True  # type: ignore[unreachable]  # mypy cannot see the other thread
                call.outcome = outcome
                batch.done = index + 1
                batch.last_ended_at = time.monotonic()  # the next call starts now
        with batch.cond:
            with self._lock:  # idle again before the caller can hand over its next batch
                self._idle_workers += 1
            batch.finished = True
            batch.cond.notify()
        return False

    def close(self) -> None:
        """Stop idle workers; abandoned calls are left to end on their own."""
        with self._lock:
            self._closed = True
            idle, self._idle_workers = self._idle_workers, 0
        for _ in range(idle):
            self._tasks.put(None)
