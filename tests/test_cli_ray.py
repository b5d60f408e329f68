"""`switchboard ray submit MANIFEST_ID` on the session's local Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

from switchboard.cli import main
from tests.sinks.test_ray_batch_jobs import batch_rule, fire
from tests.test_ray_targets import file_added

pytestmark = pytest.mark.ray


def test_ray_submit_runs_a_fired_collections_batch_job_once_and_marks_its_row_sent(
    ray_address: str, tmp_path: Path
) -> None:
    rule = batch_rule(2, '{processor: "switchboard_ray_batch.examples:FileFacts"}')
    url, store = fire(tmp_path, rule, [file_added(1), file_added(2)])
    [row] = store.due_outbox(10)
    manifest = row.submission.parameters["manifest_id"]
    env = {
        "RAY_ADDRESS": ray_address,
        "SWITCHBOARD_RAY_OUTPUT_DIR": str(tmp_path / "out"),
        "SWITCHBOARD_QUEUE": f"test.cli-ray.{tmp_path.name}",  # progress to a queue nobody has
    }
    try:
        command = ["ray", "submit", manifest, "--database", url, "--wait"]
        first = CliRunner().invoke(main, command, env=env)
        again = CliRunner().invoke(main, command, env=env)
        counts = store.counts_by_status()
    finally:
        store.close()

    assert first.exit_code == 0, first.output
    assert f"job {row.submission.job_id} SUCCEEDED" in first.output
    assert '"done": 2' in first.output
    assert again.exit_code == 0, again.output  # the same job id: Ray's job, not a second one
    assert (counts["pending"], counts["sent"]) == (0, 1)
    lines = (tmp_path / "out" / row.submission.job_id / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_ray_submit_of_an_unknown_manifest_says_so(ray_address: str, tmp_path: Path) -> None:
    url, store = fire(tmp_path, batch_rule(2, '{processor: "m:C"}'), [file_added(1)])
    store.close()
    result = CliRunner().invoke(
        main, ["ray", "submit", "nope", "--database", url], env={"RAY_ADDRESS": ray_address}
    )
    assert result.exit_code == 1
    assert "no via: ray submission for manifest nope" in result.output
