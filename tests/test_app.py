"""The composition root's startup: an unreachable database is waited for, not fatal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.processes import alive


def _switchboard_script() -> str:
    found = Path(sys.executable).with_name("switchboard")
    return str(found) if found.exists() else "switchboard"


def test_daemon_started_before_its_database_keeps_retrying_and_exits_0_on_sigterm() -> None:
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nothing",
    }
    daemon = subprocess.Popen(
        [_switchboard_script(), "run", "--migrate"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        # Wait for the first retry to be announced (however slow the imports are on a loaded
        # machine): by then the daemon has its signal handlers and has not given up.
        assert daemon.stderr is not None
        for line in daemon.stderr:
            lines.append(line)
            if "retrying in" in line:
                break
        assert daemon.poll() is None, "the daemon gave up on a database that is merely down"
        daemon.send_signal(signal.SIGTERM)
        _, rest = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    stderr = "".join(lines) + (rest or "")
    assert daemon.returncode == 0, stderr
    assert "database unreachable at startup" in stderr
    assert "retrying in" in stderr


def test_daemon_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    done = subprocess.run(
        [_switchboard_script(), "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "switchboard db upgrade" in done.stderr


def test_startup_warns_where_dataset_names_come_from_when_rules_read_them_without_clowder_url(
    tmp_path: Path, caplog
) -> None:
    import logging

    from switchboard.app import warn_about_dataset_names
    from switchboard.rules import load_rules
    from switchboard.settings import Settings

    by_name = tmp_path / "by_name.yaml"
    by_name.write_text("- name: a\n  when: {dataset.name: {prefix: s}}\n  submit: {extractor: x}\n")
    by_file = tmp_path / "by_file.yaml"
    by_file.write_text("- name: b\n  when: {file.name: {suffix: .tif}}\n  submit: {extractor: x}\n")
    with caplog.at_level(logging.WARNING, logger="switchboard.app"):
        warn_about_dataset_names(load_rules([str(by_file)]), Settings())
        warn_about_dataset_names(load_rules([str(by_name)]), Settings(clowder_url="http://c"))
        assert caplog.records == []
        warn_about_dataset_names(load_rules([str(by_name)]), Settings())
    [record] = caplog.records
    assert "each event's own host" in record.getMessage()
    assert "CLOWDER_URL" in record.getMessage()


def _reloadable_app(settings: Any) -> Any:
    """An App over real rules whose store and daemon are not needed for reloading."""
    from switchboard.app import App, RuleLoader
    from switchboard.outgoing import extractor_message
    from switchboard.processor import Processor
    from switchboard.rules.legacy import LegacyContext

    loader = RuleLoader(settings, LegacyContext.from_settings(settings))
    processor = Processor(loader.engine(), None, extractor_message)  # type: ignore[arg-type]  # no store: nothing is processed
    return App(settings, None, processor, loader, None, [])  # type: ignore[arg-type]  # as above


def test_reloading_rules_stops_the_old_engines_isolated_workers_and_closing_the_new_ones(
    tmp_path: Path,
) -> None:
    from switchboard.settings import Settings
    from tests.rules.events import make_event, view_of

    (tmp_path / "isolated.py").write_text(
        "from switchboard import rule\n\n@rule(isolated=True)\ndef r(event, dataset):\n    pass\n"
    )
    app = _reloadable_app(Settings(rules=(str(tmp_path),)))
    engine = app.engine

    def worker_after_one_event() -> int:
        event = make_event()
        assert app.engine.evaluate(event, view_of(event)).decisions[0].error is None
        (pid,) = app.engine._isolated.worker_pids.values()
        assert pid is not None and alive(pid)
        return pid

    first = worker_after_one_event()
    app.reload_rules()
    assert app.processor.engine is app.engine is not engine
    assert not alive(first)
    second = worker_after_one_event()
    app.close()
    assert not alive(second)


def test_twenty_reloads_with_python_rules_leak_no_thread_and_no_worker_process(
    tmp_path: Path,
) -> None:
    import threading

    from switchboard.settings import Settings
    from tests.rules.events import make_event, view_of

    (tmp_path / "rules.py").write_text(
        "from switchboard import rule\n\n"
        "@rule\ndef threaded(event, dataset):\n    pass\n\n"
        "@rule(isolated=True)\ndef isolated(event, dataset):\n    pass\n"
    )
    app = _reloadable_app(Settings(rules=(str(tmp_path),)))

    def run_rules() -> None:  # starts the engine's rule thread and its isolated worker
        event = make_event()
        evaluation = app.engine.evaluate(event, view_of(event))
        assert [d.error for d in evaluation.decisions] == [None, None]

    run_rules()
    threads_before = len(threading.enumerate())
    children_before = len(_children())
    for _ in range(20):
        app.reload_rules()
        run_rules()
    assert len(threading.enumerate()) <= threads_before
    assert len(_children()) <= children_before
    app.close()


def _children() -> list[int]:
    """This process's live child processes (from /proc, so nothing else is needed)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.append(int(entry.name))
    return found
