"""Daemon side of a batch job: its folder (spec + members, shipped as working_dir) and submit_job's
keyword arguments. Ray-free and processor-free: nothing of the job runs in the daemon.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .members import Member, write_members
from .options import resources_problems
from .spec import MEMBERS_FILE, SPEC_FILE, BatchSpec

RUNNER_MODULE = "switchboard.ray_batch"
# The runner as the job folder carries it (this package is self-contained: stdlib, Ray, pika),
# so the cluster needs no Switchboard installed; its own name shadows no installed package.
SHIPPED_RUNNER = "switchboard_ray_batch"
# `resources:` key -> Ray's submit_job keyword for the job's driver (the runner itself).
DRIVER_KEYWORDS = {
    "num_cpus": "entrypoint_num_cpus",
    "num_gpus": "entrypoint_num_gpus",
    "memory": "entrypoint_memory",
    "custom": "entrypoint_resources",
}


class BatchJobError(ValueError):
    """The job cannot be built as asked (bad resources, a runtime_env that sets working_dir)."""


def write_job_folder(
    folder: Path, spec: BatchSpec, members: Iterable[Member | Mapping[str, Any]]
) -> Path:
    """Write `job.json` and `members.jsonl` into `folder`: everything the runner reads.

    The folder is uploaded with the job as its `runtime_env.working_dir`, so the cluster needs
    no disk shared with the daemon, and the member list has no size limit of an environment
    variable (9,000 members are about 1.5 MB; Ray accepts working dirs up to 100 MiB).
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_members(folder / MEMBERS_FILE, members)
    shipped = replace(spec, members=Path(MEMBERS_FILE))
    (folder / SPEC_FILE).write_text(json.dumps(shipped.to_json(), indent=1), encoding="utf-8")
    return folder


def ship_runner(folder: Path) -> str:
    """Copy this package into `folder` as SHIPPED_RUNNER; the module the entrypoint runs."""
    target = folder / SHIPPED_RUNNER
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for source in Path(__file__).parent.glob("*.py"):
        shutil.copyfile(source, target / source.name)
    return SHIPPED_RUNNER


def driver_resources(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """`resources: {num_cpus, num_gpus, memory, custom}` as submit_job's entrypoint_* keywords."""
    if not resources:
        return {}
    problems = resources_problems(resources)
    if problems:
        said = "; ".join(f"{key}: {reason}" for key, reason in problems)
        raise BatchJobError(said)
    keywords: dict[str, Any] = {}
    for key, keyword in DRIVER_KEYWORDS.items():
        if key in resources:
            keywords[keyword] = (
                {name: float(amount) for name, amount in resources[key].items()}
                if key == "custom"
                else resources[key]
            )
    if "entrypoint_memory" in keywords:
        keywords["entrypoint_memory"] = int(keywords["entrypoint_memory"])  # Ray wants bytes
    return keywords


def batch_submit_kwargs(
    folder: Path,
    *,
    submission_id: str,
    resources: Mapping[str, Any] | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    python: str = "python",
    runner: str = RUNNER_MODULE,
) -> dict[str, Any]:
    """The keyword arguments of `JobSubmissionClient.submit_job` for a folder built above.

    Pure: the same arguments give the same job. `submission_id` is the submission's job id
    (a replay never starts a second job); `runtime_env` is the rule's (pip, env_vars, ...),
    with `working_dir` set to `folder`; `python` is the interpreter on the cluster; `runner`
    the runner's module (SHIPPED_RUNNER once `ship_runner` put it in the folder).
    """
    env = copy.deepcopy(dict(runtime_env or {}))
    if "working_dir" in env:
        raise BatchJobError("runtime_env.working_dir is the batch job's own folder; leave it out")
    env["working_dir"] = str(folder)
    return {
        "entrypoint": shlex.join([python, "-m", runner, SPEC_FILE]),
        "submission_id": submission_id,
        "runtime_env": env,
        "metadata": {str(key): str(value) for key, value in (metadata or {}).items()},
        **driver_resources(resources),
    }
