"""Isolated Python rules: a worker process per module, killed at the time limit, restarted."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from textwrap import dedent
from types import MappingProxyType

import pytest

from switchboard.engine import Engine
from switchboard.model import DatasetView, Decision, FileInfo, submit
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import RuleSet, load_rules
from switchboard.rules.isolated import dumps, loads
from switchboard.rules.python_rules import rules_from_module
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import record
from tests.processes import alive
from tests.rules.events import make_event, view_of

HEADER = "from switchboard import rule, submit\n"
IN_THREAD = """\
@rule
def in_thread(event, dataset):
    return submit("terra.in-thread")
"""


def module(tmp_path: Path, body: str, name: str = "isolated_rules.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + dedent(body))
    return path


@contextmanager
def engine_of(*paths: Path, timeout_s: float = 1.0) -> Iterator[Engine]:
    engine = Engine(load_rules([str(p) for p in paths]), rule_timeout_s=timeout_s)
    try:
        yield engine
    finally:
        engine.close()


def decide(engine: Engine, file_name: str = "ok.tif", **event: object) -> dict[str, Decision]:
    made = make_event(file_name, **event)  # type: ignore[arg-type]
    return {d.rule: d for d in engine.evaluate(made, view_of(made)).decisions}


LOOPS = {
    # catastrophic backtracking: the whole match runs in C, holding the GIL
    "regex": "import re; re.match(r'^(a+)+$', 'a' * 40 + 'b')",
    "python": "while True: pass",
}


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_an_isolated_rule_looping_while_holding_the_gil_is_killed_at_its_limit_and_the_next_event_is_evaluated(  # noqa: E501 - the name says what it proves
    tmp_path: Path, loop: str
) -> None:
    path = module(
        tmp_path,
        f"""
        @rule(isolated=True)
        def loops(event, dataset):
            if event.file.name == "loop.tif":
                {LOOPS[loop]}
            return submit("terra.isolated")
        """,
    )
    with engine_of(path, module(tmp_path, IN_THREAD, "threaded.py")) as engine:
        first = decide(engine, "loop.tif")
        killed_pid = next(iter(engine._isolated.worker_pids.values()), None)
        second = decide(engine, "next.tif")
        restarted_pid = next(iter(engine._isolated.worker_pids.values()))
    assert first["loops"].error == "killed after its time limit of 1.0 s"
    assert first["in_thread"].matched
    assert killed_pid is None  # the killed worker is gone, not kept
    assert second["loops"].matched and second["loops"].requests[0].extractor == "terra.isolated"
    assert second["loops"].error is None
    assert not alive(restarted_pid)  # close() stopped the fresh one


def test_an_isolated_rule_calling_os_exit_is_its_error_and_the_engine_goes_on(
    tmp_path: Path,
) -> None:
    path = module(
        tmp_path,
        """
        import os

        @rule(isolated=True)
        def exits(event, dataset):
            if event.file.name == "exit.tif":
                os._exit(3)
            return submit("terra.after")
        """,
    )
    with engine_of(path, module(tmp_path, IN_THREAD, "threaded.py")) as engine:
        first = decide(engine, "exit.tif")
        second = decide(engine, "next.tif")
    assert first["exits"].error == "its worker process died with exit code 3"
    assert first["in_thread"].matched
    assert second["exits"].matched


def test_an_isolated_rule_that_segfaults_is_its_error_and_the_next_call_gets_a_fresh_worker(
    tmp_path: Path,
) -> None:
    path = module(
        tmp_path,
        """
        import ctypes

        SWITCHBOARD_ISOLATED = True

        @rule
        def crashes(event, dataset):
            if event.file.name == "crash.tif":
                ctypes.string_at(0)
            return submit("terra.after")
        """,
    )
    with engine_of(path) as engine:
        first = decide(engine, "crash.tif")
        second = decide(engine, "next.tif")
    assert first["crashes"].error == "its worker process was killed by signal SIGSEGV"
    assert second["crashes"].matched


@pytest.mark.parametrize(
    ("statement", "expected"),
    [("sys.exit(2)", "SystemExit"), ("raise KeyboardInterrupt", "KeyboardInterrupt")],
)
def test_a_base_exception_in_an_isolated_rule_is_its_error_at_its_line_and_the_worker_stays(
    tmp_path: Path, statement: str, expected: str
) -> None:
    path = module(
        tmp_path,
        f"""
        import sys

        @rule(isolated=True)
        def stops(event, dataset):
            if event.file.name == "stop.tif":
                {statement}
            return submit("terra.after")
        """,
    )
    with engine_of(path) as engine:
        first = decide(engine, "stop.tif")
        pid = engine._isolated.worker_pids[str(path.resolve())]
        second = decide(engine, "next.tif")
        assert engine._isolated.worker_pids[str(path.resolve())] == pid
    error = first["stops"].error
    assert error is not None and error.startswith(f"raised {expected} at {path}:8")
    assert second["stops"].matched


def test_an_isolated_rules_error_is_redacted_like_any_rules(tmp_path: Path) -> None:
    path = module(
        tmp_path,
        """
        @rule(isolated=True)
        def leaks(event, dataset):
            raise ValueError("key " + event.body["secretKey"])
        """,
    )
    with engine_of(path) as engine:
        decisions = decide(engine, body={"secretKey": "s3cr3t-key"})
    assert decisions["leaks"].error == f"raised ValueError at {path}:5: key <redacted>"


def test_rule_utils_in_an_isolated_rule_raises_a_clear_error(tmp_path: Path) -> None:
    path = module(
        tmp_path,
        """
        import rule_utils

        @rule(isolated=True)
        def counts(event, dataset):
            return submit("x", parameters={"n": rule_utils.count("k")})
        """,
    )
    with engine_of(path) as engine:
        error = decide(engine)["counts"].error
    assert error is not None and error.startswith("raised NotBoundError at ")
    assert "rule_utils is unavailable in an isolated rule" in error


def test_an_isolated_rules_submission_goes_through_the_engine_into_the_outbox(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    path = module(
        tmp_path,
        """
        import os

        SWITCHBOARD_ISOLATED = True

        @rule
        def sends(event, dataset):
            return submit(
                "terra.isolated",
                resource="file",
                parameters={
                    "pid": os.getpid(),
                    "files": dataset.count(suffix=".tif"),
                    "source": event.body["source"],  # a nested read-only mapping, sent back
                },
            )
        """,
    )
    with engine_of(path) as engine:
        result = Processor(engine, sql_store, extractor_message).process(
            [ListDelivery.from_record(1, record(1))]
        )
    (submission,) = result.submissions
    assert submission.rule == "sends" and submission.extractor == "terra.isolated"
    assert submission.parameters["pid"] != os.getpid()  # it ran in the worker
    assert submission.parameters["files"] == 1
    assert submission.parameters["source"]["mimeType"] == "image/tiff"
    assert result.rule_errors == []


def test_closing_the_engine_stops_every_isolated_worker(tmp_path: Path) -> None:
    paths = [
        module(tmp_path, f"@rule(isolated=True)\ndef r{n}(event, dataset):\n    pass\n", f"m{n}.py")
        for n in range(2)
    ]
    with engine_of(*paths) as engine:
        decide(engine)
        pids = list(engine._isolated.worker_pids.values())
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)


def test_the_module_flag_isolates_its_rules_unless_a_rule_says_otherwise(tmp_path: Path) -> None:
    path = module(
        tmp_path,
        """
        SWITCHBOARD_ISOLATED = True

        @rule
        def follows(event, dataset): ...

        @rule(isolated=False)
        def opts_out(event, dataset): ...
        """,
    )
    rules, problems = rules_from_module(path)
    assert problems == []
    assert {r.name: r.isolated for r in rules} == {"follows": True, "opts_out": False}
    assert all(r.module_path == str(path.resolve()) for r in rules)


def test_a_module_flag_that_is_not_a_bool_is_a_load_problem_at_its_line(tmp_path: Path) -> None:
    path = module(tmp_path, 'SWITCHBOARD_ISOLATED = "yes"\n')
    rules, problems = rules_from_module(path)
    assert rules == []
    assert [str(p) for p in problems] == [
        f"{path}:2: SWITCHBOARD_ISOLATED must be True or False, not 'yes'"
    ]


def test_events_views_and_requests_cross_the_worker_pipe_equal_and_read_only() -> None:
    event = make_event(body={"secretKey": "k", "nested": {"a": [1, {"b": 2}]}})
    event = replace(event, raw=b'{"raw": true}', properties=MappingProxyType({"k": "v"}))
    view = DatasetView("d", "n", (FileInfo("f", "a.tif", "image/tiff", 3),), MappingProxyType({}))
    request = submit("x", parameters={"p": {"q": 1}}, via="ray", entrypoint="run", runtime_env={})
    for value in (event, view, request):
        assert loads(dumps(value)) == value
    back = loads(dumps(request))
    assert isinstance(back.parameters, MappingProxyType)
    assert isinstance(back.options, MappingProxyType)
    assert isinstance(back.options["runtime_env"], MappingProxyType)


def test_a_rule_set_mixing_isolated_and_in_thread_rules_decides_in_rule_order(
    tmp_path: Path,
) -> None:
    first = module(tmp_path, "@rule(isolated=True)\ndef a(event, dataset):\n    pass\n", "a.py")
    second = module(tmp_path, IN_THREAD, "b.py")
    ruleset = load_rules([str(first), str(second)])
    with engine_of(first, second) as engine:
        assert [d.rule for d in engine.evaluate(make_event(), view_of(make_event())).decisions] == [
            r.name for r in RuleSet(ruleset)
        ]


def test_a_script_without_a_main_guard_can_run_isolated_rules(tmp_path: Path) -> None:
    rules = module(
        tmp_path, "@rule(isolated=True)\ndef r(event, dataset):\n    return submit('x')\n"
    )
    script = tmp_path / "embeds.py"
    script.write_text(
        dedent(
            f"""\
            from switchboard import Engine, load_rules
            from switchboard.model import DatasetView, Event, EventKind, FileInfo

            engine = Engine(load_rules([{str(rules)!r}]))
            event = Event(EventKind.FILE_ADDED, "m", "f", "d", FileInfo("f", "a.tif"))
            for _ in range(3):
                (decision,) = engine.evaluate(event, DatasetView("d")).decisions
                print(decision.matched, decision.error)
            engine.close()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True None"] * 3


def test_an_isolated_rules_value_that_cannot_cross_back_is_its_error_not_the_batchs(
    tmp_path: Path,
) -> None:
    path = module(
        tmp_path,
        """
        class Unreadable:
            def __reduce__(self):
                return (int, ("not a number",))  # raises when rebuilt in the daemon

        @rule(isolated=True)
        def unreadable(event, dataset):
            return submit("x", parameters={"v": Unreadable()})

        @rule(isolated=True)
        def unpicklable(event, dataset):
            return submit("x", parameters={"v": lambda: None})
        """,
    )
    with engine_of(path) as engine:
        decisions = decide(engine)
        again = decide(engine)
    assert decisions["unreadable"].error == (
        "raised ValueError: returned a value that cannot be read back from its worker process: "
        "invalid literal for int() with base 10: 'not a number'"
    )
    error = decisions["unpicklable"].error
    assert error is not None and "cannot be sent back from its worker process" in error
    assert again == decisions


def test_each_killed_isolated_call_is_followed_by_the_keepalive_and_its_failure_is_not_fatal(
    tmp_path: Path,
) -> None:
    path = module(
        tmp_path,
        """
        @rule(isolated=True)
        def loops(event, dataset):
            while True:
                pass
        """,
    )
    calls: list[str] = []

    def keepalive() -> None:
        calls.append("keepalive")
        raise ConnectionError("broker gone")  # noticed later, when the batch is acked

    engine = Engine(load_rules([str(path)]), rule_timeout_s=0.3, between=keepalive)
    try:
        events = [make_event(message_id=f"m{n}") for n in range(3)]
        evaluations = engine.evaluate_many([(e, view_of(e)) for e in events])
    finally:
        engine.close()
    assert [e.decisions[0].error for e in evaluations] == [
        "killed after its time limit of 0.3 s"
    ] * 3
    assert calls == ["keepalive"] * 3


def test_a_worker_that_died_while_idle_is_replaced_and_the_call_still_runs(tmp_path: Path) -> None:
    path = module(
        tmp_path, "@rule(isolated=True)\ndef r(event, dataset):\n    return submit('x')\n"
    )
    with engine_of(path) as engine:
        assert decide(engine)["r"].matched
        (worker,) = engine._isolated._workers.values()
        worker.process.kill()  # as the OOM killer would, between two events
        worker.process.wait()
        assert decide(engine)["r"].matched
        assert engine._isolated.worker_pids[str(path.resolve())] != worker.process.pid
