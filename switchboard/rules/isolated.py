"""Runs isolated Python rules in worker processes that are killed at their time limit.

A rule asks for it with `@rule(isolated=True)`, a whole module with `SWITCHBOARD_ISOLATED = True`,
when it does not need the event's database transaction. Each such module gets one worker
process (a fresh interpreter that imports the module again from its file, as the loader does,
talking over a socket pair with multiprocessing's Connection). A call pickles the rule's name,
the event and the dataset view to the worker and waits at most `timeout_s` for the answer; a
worker that overruns is killed (SIGKILL), so a C loop holding the GIL, `os._exit` or a segfault
costs that rule that event and nothing else, and the next call starts a fresh worker.
rule_utils is unavailable in the worker (there is no transaction to bind): its calls raise
NotBoundError saying so. Used by one thread at a time (the engine's).
"""

from __future__ import annotations

import copyreg
import ctypes
import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

from .runner import Outcome

START_TIMEOUT_S = 30.0  # a fresh interpreter importing the rule module; not the rule's time
STOP_TIMEOUT_S = 2.0
RULE_UTILS_UNAVAILABLE = (
    "rule_utils is unavailable in an isolated rule: it runs in a worker process, outside the "
    "event's database transaction (drop isolated=True / SWITCHBOARD_ISOLATED to use progress)"
)
# The worker is a fresh interpreter started with our sys.path. Not multiprocessing's `spawn`:
# that re-runs the parent's __main__ script in the child, which an embedding script without an
# `if __name__ == "__main__":` guard turns into a crash at every call.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from switchboard.rules.isolated import serve_fd; serve_fd(*sys.argv[2:])"
)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class RemoteError(Exception):
    """What an isolated rule raised in its worker: the type's name, its message, and the line
    of the rule's file it was raised from (None if not from that file)."""

    def __init__(self, type_name: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteError, (self.type_name, self.message, self.line))


# -- the wire: pickle, with read-only mappings (events, views, requests) kept read-only ---------


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_read_only(mapping: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return (_read_only, (dict(mapping),))


class _Pickler(pickle.Pickler):
    """pickle.Pickler that sends a MappingProxyType (which pickle refuses) as a dict and
    rebuilds it read-only, at any depth; nothing global is changed."""

    def __init__(self, file: IO[bytes], protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_read_only}


def dumps(value: Any) -> bytes:
    """`value` as bytes for the worker pipe (Event, DatasetView, SubmitRequest included)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)  # our own worker's answer (or our request), over our own pipe


# -- the parent side ---------------------------------------------------------------------------


class _Worker:
    """One worker process serving the rules of one module, and our end of its socket."""

    def __init__(self, module_path: str) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(  # our own interpreter and bootstrap
                [
                    sys.executable,
                    "-c",
                    _BOOTSTRAP,
                    json.dumps(sys.path),
                    str(theirs.fileno()),
                    module_path,
                    str(os.getpid()),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self.conn = Connection(ours.detach())  # theirs is closed here: a dead worker reads as EOF

    def answer(self, timeout_s: float) -> tuple[str, Any]:
        """The worker's next message, ("killed", None) after `timeout_s`, or ("died", why)."""
        if not wait([self.conn], timeout=timeout_s):
            self.kill()
            return "killed", None
        try:
            data = self.conn.recv_bytes()
        except (EOFError, OSError):
            self.kill()
            return "died", self.death()
        try:
            message: tuple[str, Any] = loads(data)
            return message
        except Exception as exc:  # a value pickled there that cannot be rebuilt here
            why = f"returned a value that cannot be read back from its worker process: {exc}"
            return "raised", RemoteError(type(exc).__name__, why)

    def death(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f"its worker process was killed by signal {name}"
        return f"its worker process died with exit code {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()

    def stop(self) -> None:
        """Close the socket (the worker exits on EOF); kill it if it does not go quickly."""
        self.conn.close()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class IsolatedRunner:
    """Calls rules in their module's worker process, each call killed after `timeout_s`."""

    def __init__(self, timeout_s: float, *, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self._workers: dict[str, _Worker] = {}
        self._closed = False

    @property
    def worker_pids(self) -> dict[str, int]:
        """Module path -> pid of its live worker process."""
        return {path: w.process.pid for path, w in self._workers.items()}

    def run(self, module_path: str, rule_name: str, *args: Any) -> Outcome:
        """Run the rule `rule_name` of the module at `module_path` on `args` in its worker.

        Outcomes: "ok" (value), "raised" (a RemoteError), "killed" (overran: the worker was
        killed) or "died" (value says how; the worker is started again on the next call).
        """
        if self._closed:
            raise RuntimeError("IsolatedRunner is closed")
        try:
            request = dumps((rule_name, args))
        except Exception as exc:  # an event that cannot be pickled is this call's failure
            why = f"cannot send the event to its worker process: {exc}"
            return Outcome("raised", error=RemoteError(type(exc).__name__, why))
        worker = self._workers.get(module_path)
        if worker is None:
            worker, problem = self._start(module_path)
            if worker is None:
                return Outcome("died", problem)
        try:
            worker.conn.send_bytes(request)
        except OSError:  # died while idle (the OOM killer, say): one fresh worker, once
            self._forget(module_path)
            worker, problem = self._start(module_path)
            if worker is None:
                return Outcome("died", problem)
            try:
                worker.conn.send_bytes(request)
            except OSError as exc:
                self._forget(module_path)
                return Outcome("died", f"its worker process stopped reading: {exc}")
        status, value = worker.answer(self.timeout_s)
        if status in ("killed", "died"):
            self._forget(module_path)
            return Outcome(status, value)  # type: ignore[arg-type]
        if status == "raised":
            return Outcome("raised", error=value)
        return Outcome("ok", value)

    def _start(self, module_path: str) -> tuple[_Worker | None, str]:
        worker = _Worker(module_path)
        status, value = worker.answer(self.start_timeout_s)
        if status == "ready":
            self._workers[module_path] = worker
            return worker, ""
        worker.kill()
        if status == "killed":
            return None, f"its worker process did not start within {self.start_timeout_s} s"
        if status == "failed":
            return None, f"its worker process could not load the module: {value}"
        return None, f"{value} while starting"

    def _forget(self, module_path: str) -> None:
        worker = self._workers.pop(module_path, None)
        if worker is not None:
            worker.kill()

    def close(self) -> None:
        """Stop every worker process (the engine closes on reload and shutdown)."""
        self._closed = True
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()


# -- the worker side ---------------------------------------------------------------------------


def serve_fd(fd: str, module_path: str, parent_pid: str) -> None:
    """The worker process's entry point (see _BOOTSTRAP): serve on the inherited socket `fd`."""
    serve(Connection(int(fd)), module_path, int(parent_pid))


def serve(conn: Connection, module_path: str, parent_pid: int) -> None:
    """The worker process: import the module, then answer calls until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the daemon
    _die_with(parent_pid)
    import rule_utils.binding

    from .python_rules import rules_from_module

    rule_utils.binding.refuse_unbound(RULE_UTILS_UNAVAILABLE)
    rules, problems = rules_from_module(module_path)
    if problems:
        conn.send_bytes(dumps(("failed", "; ".join(str(p) for p in problems))))
        return
    functions = {r.name: r.function for r in rules if r.function is not None}
    conn.send_bytes(dumps(("ready", None)))
    while True:
        try:
            rule_name, args = loads(conn.recv_bytes())
        except EOFError:
            return  # the engine closed, or the daemon is gone
        conn.send_bytes(_answer(functions.get(rule_name), rule_name, module_path, args))


def _answer(function: Any, rule_name: str, module_path: str, args: tuple[Any, ...]) -> bytes:
    try:
        if function is None:
            raise LookupError(f"{module_path} no longer defines a rule {rule_name!r}")
        reply: tuple[str, Any] = ("ok", function(*args))
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the rule's error
        reply = ("raised", _remote(exc, function))
    try:
        return dumps(reply)
    except Exception as exc:  # a return value pickle refuses
        why = f"returned a value that cannot be sent back from its worker process: {exc}"
        return dumps(("raised", RemoteError(type(exc).__name__, why)))


def rule_line(exc: BaseException, function: Any) -> int | None:
    """The last line of the rule function's own file that `exc` passed through, if any."""
    line = None
    code = getattr(function, "__code__", None)
    if code is not None:
        rule_file = Path(code.co_filename).resolve()
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve() == rule_file:
                line = frame.lineno
    return line


def _remote(exc: BaseException, function: Any) -> RemoteError:
    """`exc` as a RemoteError, with the last line of the rule's own file it passed through."""
    return RemoteError(type(exc).__name__, str(exc), rule_line(exc, function))


def _die_with(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker when the daemon dies (even by kill -9), so a rule stuck
    in C is never left running alone; elsewhere the closed pipe ends an idle worker."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(0)  # the daemon died before the request above took effect
