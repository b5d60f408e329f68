"""The daemon side of a batch job: its folder and submit_job's arguments, without Ray."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from switchboard.ray_batch.members import Member, MembersError, read_members
from switchboard.ray_batch.spec import BatchSpec, SpecError, load_spec
from switchboard.ray_batch.submission import (
    BatchJobError,
    batch_submit_kwargs,
    driver_resources,
    write_job_folder,
)


def test_a_9000_member_job_travels_in_its_folder_not_in_an_environment_variable(
    tmp_path: Path,
) -> None:
    members = [
        {"id": f"file-{n}", "name": f"plot-{n}_left.tif", "path": f"/data/2017-05-01/plot-{n}.tif"}
        for n in range(9000)
    ]
    spec = BatchSpec(processor="plotml.models:Classifier", batch_size=16, job_id="job-9")

    folder = write_job_folder(tmp_path / "job", spec, members)
    kwargs = batch_submit_kwargs(folder, submission_id="job-9", runtime_env={"pip": ["numpy"]})

    assert kwargs["runtime_env"] == {"pip": ["numpy"], "working_dir": str(folder)}
    assert "env_vars" not in kwargs["runtime_env"]
    assert shlex.split(kwargs["entrypoint"]) == [
        "python",
        "-m",
        "switchboard.ray_batch",
        "job.json",
    ]
    loaded, base = load_spec(folder / "job.json")
    assert base == folder and loaded == spec
    assert [m.id for m in read_members(folder / loaded.members)] == [m["id"] for m in members]


def test_the_job_resources_become_the_drivers_entrypoint_keywords() -> None:
    resources = {"num_cpus": 1, "num_gpus": 0.5, "memory": 2e9, "custom": {"bigdb": 1}}
    assert driver_resources(resources) == {
        "entrypoint_num_cpus": 1,
        "entrypoint_num_gpus": 0.5,
        "entrypoint_memory": 2_000_000_000,
        "entrypoint_resources": {"bigdb": 1.0},
    }
    kwargs = batch_submit_kwargs(
        Path("job"), submission_id="j", resources=resources, metadata={"rule": "r"}
    )
    assert kwargs["entrypoint_resources"] == {"bigdb": 1.0}
    assert kwargs["metadata"] == {"rule": "r"}


def test_bad_job_resources_or_a_runtime_env_with_its_own_working_dir_are_refused() -> None:
    with pytest.raises(BatchJobError, match=r"resources.num_cpus: must not be negative"):
        batch_submit_kwargs(Path("job"), submission_id="j", resources={"num_cpus": -1})
    with pytest.raises(BatchJobError, match="working_dir"):
        batch_submit_kwargs(Path("job"), submission_id="j", runtime_env={"working_dir": "."})


def test_a_spec_with_bad_options_names_the_file_and_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"processor": "x:Y", "batch_size": 0, "colour": "red"}))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert str(raised.value) == (
        f"{path}: colour: unknown key 'colour'; batch_size: must be at least 1, got 0"
    )


def test_a_members_file_with_a_bad_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "members.jsonl"
    path.write_text('{"id": "a", "path": "/a"}\n{"id": "b"}\n')
    with pytest.raises(MembersError, match=r"members.jsonl:2: a member needs a non-empty 'path'"):
        read_members(path)
    path.write_text('{"id": "a", "path": "/a"}\n{"id": "a", "path": "/b"}\n')
    with pytest.raises(MembersError, match=r"members.jsonl:2: duplicate member id 'a'"):
        read_members(path)


def test_write_job_folder_refuses_duplicate_member_ids(tmp_path: Path) -> None:
    twice = [Member("a", "/a"), Member("a", "/b")]
    with pytest.raises(MembersError, match="duplicate id 'a'"):
        write_job_folder(tmp_path, BatchSpec(processor="x:Y"), twice)


def test_building_a_batch_job_imports_neither_ray_nor_the_processor(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path\n"
        "from switchboard.ray_batch.spec import BatchSpec\n"
        "from switchboard.ray_batch.submission import batch_submit_kwargs, write_job_folder\n"
        "folder = write_job_folder(Path(sys.argv[1]), BatchSpec(processor='plotml:C'),"
        " [{'id': 'a', 'path': '/a'}])\n"
        "batch_submit_kwargs(folder, submission_id='j', resources={'custom': {'bigdb': 1}})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'plotml')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
