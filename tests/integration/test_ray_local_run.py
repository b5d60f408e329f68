"""`switchboard run` with RAY_ADDRESS=local: a private Ray head, a batch rule end to end."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from switchboard.demo_ray import demo_rule
from tests.integration.conftest import SWITCHBOARD, DaemonProcess, Wiring, wait_for
from tests.processes import alive

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

pytestmark = pytest.mark.ray

MEMBERS = 5


def finished_job(wiring: Wiring, job_id: str) -> dict[str, Any] | None:
    """`switchboard job ID --json` once the job has ended, else None."""
    shown = subprocess.run(
        [str(SWITCHBOARD), "job", job_id, "--json"],
        env=wiring.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if shown.returncode != 0:
        return None
    job: dict[str, Any] = json.loads(shown.stdout)
    return job if job["status"] in ("succeeded", "failed") else None


def test_a_batch_rule_runs_on_the_private_head_of_switchboard_run_with_progress_in_its_job(
    wiring: Wiring, spawn: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    data, output = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    for n in range(1, MEMBERS + 1):
        (data / f"plot-{n:05d}_left.tif").write_bytes(bytes(n))
    wiring.rules.write_text(demo_rule(data, MEMBERS), encoding="utf-8")  # the demo --ray rule
    daemon = spawn(
        RAY_ADDRESS="local",
        SWITCHBOARD_RAY_NUM_CPUS="2",
        SWITCHBOARD_RAY_OUTPUT_DIR=str(output),
    )
    try:
        wiring.publish(range(1, MEMBERS + 1))
        results = wait_for(
            lambda: list(output.glob("*/summary.json")), 240, "the batch job's summary"
        )
        job_id = results[0].parent.name
        job = wait_for(lambda: finished_job(wiring, job_id), 120, "the job's final update")
    finally:
        code = daemon.terminate(timeout_s=120)
        with wiring.channel() as channel:
            channel.queue_delete(f"{wiring.queue}.status")
    log = daemon.output()
    assert code == 0, log
    [summary_path] = results
    summary = json.loads(summary_path.read_text())
    assert (summary["total"], summary["done"], summary["failed"]) == (MEMBERS, MEMBERS, 0)
    lines = (summary_path.parent / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["result"]["size_bytes"] for r in records) == list(range(1, MEMBERS + 1))
    assert wiring.query("SELECT status FROM submissions WHERE via = 'ray'") == [("sent",)]
    assert job["status"] == "succeeded"
    progress = [(e["status"], e["source"], e["message"]) for e in job["timeline"]]
    assert ("started", "extractor", f"Started processing {MEMBERS} members.") in progress
    assert any(s == "processing" and "done, 0 failed" in m for s, _, m in progress), progress
    assert (
        "succeeded",
        "extractor",
        f"Done processing: {MEMBERS}/{MEMBERS} done, 0 failed.",
    ) in progress
    head = re.search(r"local Ray head started at http://127\.0\.0\.1:\d+ .*pid (\d+)", log)
    assert head is not None, log
    assert "local Ray head stopped" in log
    assert not alive(int(head.group(1)))
