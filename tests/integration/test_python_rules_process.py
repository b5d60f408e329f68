"""Python rules inside a real `switchboard run`: no rule can stop it, and SIGTERM still does."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Wiring, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

STOPPING_RULES = """\
import sys

from switchboard import rule


@rule
def stops(event, dataset):
    name = event.file.name
    if name.startswith("plot-00001"):
        raise KeyboardInterrupt
    if name.startswith("plot-00002"):
        sys.exit()
    if name.startswith("plot-00003"):
        raise GeneratorExit
"""

ISOLATED_RULES = """\
import os
import re

from switchboard import rule, submit

SWITCHBOARD_ISOLATED = True


@rule
def isolated(event, dataset):
    name = event.file.name
    if name.startswith("plot-00001"):
        re.match(r"^(a+)+$", "a" * 40 + "b")  # backtracks in C, holding the GIL
    if name.startswith("plot-00002"):
        os._exit(3)
    return submit("{extractor}.isolated", resource="file", parameters={{"pid": os.getpid()}})
"""


def rule_folder(wiring: Wiring, name: str, text: str) -> Path:
    folder = wiring.tmp / "rules"
    folder.mkdir()
    shutil.copy(wiring.rules, folder / "rules.yaml")
    (folder / name).write_text(text.format(extractor=wiring.extractor))
    return folder


def rule_failures(output: str) -> dict[str, list[str]]:
    """message id -> the errors of its `rule failed` log lines."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "rule failed":
            found.setdefault(entry["message_id"], []).append(f"{entry['rule']}: {entry['error']}")
    return found


def delete_queue(wiring: Wiring, name: str) -> None:
    with wiring.channel() as channel:
        channel.queue_delete(name)


def sent(wiring: Wiring) -> int:
    return wiring.statuses().get("sent", 0)


def test_keyboard_interrupt_and_sys_exit_in_a_rule_are_logged_errors_and_only_sigterm_stops_the_daemon(  # noqa: E501 - the name says what it proves
    wiring: Wiring, spawn
) -> None:
    folder = rule_folder(wiring, "stops.py", STOPPING_RULES)
    daemon = spawn(SWITCHBOARD_RULES=str(folder))
    wiring.publish(range(5), host="")  # no host: no name lookup at an unreachable Clowder
    wait_for(lambda: sent(wiring) == 5, 60, "a submission for each of 5 events")
    wait_for(lambda: len(rule_failures(daemon.output())) == 3, 30, "three rule failures logged")
    assert daemon.process.poll() is None, daemon.output()
    failures = rule_failures(daemon.output())
    assert failures["msg-00000001"][0].startswith("stops: raised KeyboardInterrupt at ")
    assert failures["msg-00000002"][0].startswith("stops: raised SystemExit at ")
    assert failures["msg-00000003"][0].startswith("stops: raised GeneratorExit at ")
    assert wiring.query("SELECT count(*) FROM processed_messages") == [(5,)]
    assert wiring.depth(wiring.queue) == 0
    assert daemon.terminate() == 0, daemon.output()
    assert "switchboard daemon stopped" in daemon.output()


def test_an_isolated_rule_looping_in_c_or_calling_os_exit_costs_its_event_not_the_daemon(
    wiring: Wiring, spawn, request: pytest.FixtureRequest
) -> None:
    folder = rule_folder(wiring, "isolated.py", ISOLATED_RULES)
    request.addfinalizer(lambda: delete_queue(wiring, f"{wiring.extractor}.isolated"))
    daemon = spawn(SWITCHBOARD_RULES=str(folder), SWITCHBOARD_RULE_TIMEOUT_S="1")
    wiring.publish(range(5), host="")  # no host: no name lookup at an unreachable Clowder
    # 5 YAML submissions plus 3 isolated ones (events 0, 3, 4)
    wait_for(lambda: sent(wiring) == 8, 90, "the submissions of all 5 events")
    failures = rule_failures(daemon.output())
    assert failures == {
        "msg-00000001": ["isolated: killed after its time limit of 1.0 s"],
        "msg-00000002": ["isolated: its worker process died with exit code 3"],
    }
    bodies = [body for _, body in wiring.drain(f"{wiring.extractor}.isolated")]
    pids = {body["parameters"]["pid"] for body in bodies if isinstance(body, dict)}
    assert len(bodies) == 3 and daemon.process.pid not in pids
    assert daemon.terminate() == 0, daemon.output()
    for pid in pids:  # the live worker ended with the daemon
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


STUCK_RULE = """\
import os
from pathlib import Path

from switchboard import rule


@rule(isolated=True)
def stuck(event, dataset):
    Path({pid_file!r}).write_text(str(os.getpid()))
    while True:
        pass
"""


def test_an_isolated_worker_stuck_in_a_loop_dies_with_a_daemon_killed_by_sigkill(
    wiring: Wiring, spawn
) -> None:
    pid_file = wiring.tmp / "worker.pid"
    folder = wiring.tmp / "rules"
    folder.mkdir()
    (folder / "stuck.py").write_text(STUCK_RULE.format(pid_file=str(pid_file)))
    daemon = spawn(SWITCHBOARD_RULES=str(folder), SWITCHBOARD_RULE_TIMEOUT_S="600")
    wiring.publish([0], host="")  # no host: no name lookup at an unreachable Clowder
    worker = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the worker"))
    assert worker != daemon.process.pid
    daemon.kill()
    wait_for(lambda: not running(worker), 30, "the orphaned worker to die")


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
