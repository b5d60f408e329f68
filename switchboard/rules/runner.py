"""Runs Python rules on worker threads so a rule that hangs costs its timeout, never the engine.

Rules run one at a time (they may share the event's database transaction, which is not
thread-safe), each on a daemon worker thread while the caller waits at most `timeout_s`.
A call that overruns is abandoned: its thread is left to finish (Python cannot kill it) and a
replacement worker takes its place. Bound: while a rule's abandoned call is still running, that
rule is not started again (its later events report it as still running), so at most one thread
per Python rule can be stuck, plus the one live worker; the threads are daemons, so they never
hold up process exit. Each call runs in a copy of the caller's `contextvars` context.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "raised", "timed_out", "still_running"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    value: Any = None  # the return value, or the exception raised
    error: BaseException | None = None


_Task = tuple[Future, contextvars.Context, Callable[..., Any], tuple[Any, ...]]


class RuleRunner:
    """Call functions on a worker thread with a timeout, quarantining calls that overran."""

    def __init__(self, timeout_s: float, *, name: str = "switchboard-rule") -> None:
        self.timeout_s = timeout_s
        self._name = name
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle_workers = 0
        self._overran: set[Future] = set()  # abandoned calls; their workers retire when done
        self._abandoned: dict[str, Future] = {}
        self._closed = False

    @property
    def abandoned(self) -> list[str]:
        """Keys whose timed-out call is still running."""
        return [k for k, f in self._abandoned.items() if not f.done()]

    def run(self, key: str, function: Callable[..., Any], *args: Any) -> Outcome:
        """Run `function(*args)` for the rule `key`, waiting at most `timeout_s`."""
        previous = self._abandoned.get(key)
        if previous is not None:
            if not previous.done():
                return Outcome("still_running")
            del self._abandoned[key]
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("RuleRunner is closed")
            if self._idle_workers == 0:
                self._start_worker()
            else:
                self._idle_workers -= 1
        self._tasks.put((future, contextvars.copy_context(), function, args))
        try:
            value = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._abandoned[key] = future
            with self._lock:
                if not future.done():  # else it finished just now and its worker is idle again
                    self._overran.add(future)
            return Outcome("timed_out")
        except Exception as exc:  # the rule's own failure, isolated
            return Outcome("raised", exc, exc)
        return Outcome("ok", value)

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        thread.start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, context, function, args = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(context.run(function, *args))
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                if future in self._overran:
                    self._overran.discard(future)
                    return  # a replacement worker already took this one's place
                self._idle_workers += 1

    def close(self) -> None:
        """Stop idle workers; abandoned calls are left to end on their own."""
        with self._lock:
            self._closed = True
            idle, self._idle_workers = self._idle_workers, 0
        for _ in range(idle):
            self._tasks.put(None)
