"""The batch job spec (`job.json`): what to run, with which per-task options, over which members."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import BATCH_KEYS, batch_problems

SPEC_FILE = "job.json"
MEMBERS_FILE = "members.jsonl"
# Keys of the spec besides the `batch:` options.
JOB_KEYS = ("job_id", "members", "output", "status", "clowder")
CLOWDER_KEYS = ("url", "key", "api_version", "extractor")
STATUS_KEYS = (
    "url",
    "reply_to",
    "correlation_id",
    "file_id",
    "extractor_id",
    "job_id",
    "every_s",
)


class SpecError(ValueError):
    """The job spec is unusable; the message names the file and every problem."""


@dataclass(frozen=True)
class StatusTarget:
    """Where progress goes: pyclowder-shaped status updates to `reply_to` on the broker `url`."""

    url: str
    reply_to: str
    correlation_id: str | None = None
    file_id: str = ""
    extractor_id: str = ""
    job_id: str | None = None
    every_s: float = 5.0

    def __repr__(self) -> str:  # the URL may hold a password
        return f"StatusTarget(reply_to={self.reply_to!r}, job_id={self.job_id!r})"


@dataclass(frozen=True)
class ClowderTarget:
    """Where `post_metadata` results go: Clowder's REST API at `url`, with the job's key."""

    url: str
    key: str = ""
    api_version: int = 1
    extractor: str = ""  # the agent the metadata is attributed to (the job's target)

    def __repr__(self) -> str:  # the key is a secret
        return f"ClowderTarget(url={self.url!r}, api_version={self.api_version!r})"


@dataclass(frozen=True)
class BatchSpec:
    """One batch job. Paths are relative to the spec file's folder (the job's working_dir)."""

    processor: str
    processor_args: Mapping[str, Any] = field(default_factory=dict)
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory: float | None = None  # bytes per actor
    resources: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 16
    concurrency: int = 2
    max_retries: int = 2
    max_error_fraction: float = 0.0
    post_metadata: bool = False  # post each member's result to Clowder as file metadata
    members: Path = Path(MEMBERS_FILE)
    output: Path = Path("out")
    job_id: str | None = None
    status: StatusTarget | None = None
    clowder: ClowderTarget | None = None

    def actor_options(self) -> dict[str, Any]:
        """Ray's `.options(...)` for each actor of the pool: the per-task resources."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory is not None:
            options["memory"] = self.memory
        if self.resources:
            options["resources"] = dict(self.resources)
        # The runner retries a dead actor's batch itself (counted against max_retries), on a
        # fresh actor, so Ray must neither restart it nor replay its calls behind our back.
        options["max_restarts"] = 0
        options["max_task_retries"] = 0
        return options

    def to_json(self) -> dict[str, Any]:
        """The spec as `job.json` holds it (paths relative, as given)."""
        data: dict[str, Any] = {
            "processor": self.processor,
            "processor_args": dict(self.processor_args),
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "resources": dict(self.resources),
            "batch_size": self.batch_size,
            "concurrency": self.concurrency,
            "max_retries": self.max_retries,
            "max_error_fraction": self.max_error_fraction,
            "post_metadata": self.post_metadata,
            "members": str(self.members),
            "output": str(self.output),
        }
        if self.memory is not None:
            data["memory"] = self.memory
        if self.job_id is not None:
            data["job_id"] = self.job_id
        if self.status is not None:
            data["status"] = {key: getattr(self.status, key) for key in STATUS_KEYS}
        if self.clowder is not None:
            data["clowder"] = {key: getattr(self.clowder, key) for key in CLOWDER_KEYS}
        return data


def spec_from_mapping(data: object, where: str = SPEC_FILE) -> BatchSpec:
    """A BatchSpec from the decoded JSON; SpecError naming `where` and every problem."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: must be a JSON object")
    batch = {key: value for key, value in data.items() if key in BATCH_KEYS}
    problems = [
        (key, f"unknown key {key!r}")
        for key in data
        if key not in BATCH_KEYS and key not in JOB_KEYS
    ]
    problems += batch_problems(batch, prefix="")
    status = data.get("status")
    if status is not None:
        problems += _status_problems(status)
    clowder = data.get("clowder")
    if clowder is not None:
        problems += _clowder_problems(clowder)
    if data.get("post_metadata") and clowder is None:
        problems.append(("post_metadata", "needs a clowder target (url, key)"))
    for key in ("members", "output"):
        if key in data and not (isinstance(data[key], str) and data[key]):
            problems.append((key, "must be a non-empty path"))
    if data.get("job_id") is not None and not isinstance(data["job_id"], str):
        problems.append(("job_id", "must be a string"))
    if problems:
        said = "; ".join(f"{key.lstrip('.')}: {reason}" for key, reason in problems)
        raise SpecError(f"{where}: {said}")
    return BatchSpec(
        **batch,
        members=Path(data.get("members", MEMBERS_FILE)),
        output=Path(data.get("output", "out")),
        job_id=data.get("job_id"),
        status=StatusTarget(**status) if status is not None else None,
        clowder=ClowderTarget(**clowder) if clowder is not None else None,
    )


def _clowder_problems(clowder: object) -> list[tuple[str, str]]:
    if not isinstance(clowder, Mapping):
        return [("clowder", "must be a mapping")]
    problems = [(f"clowder.{key}", "unknown key") for key in clowder if key not in CLOWDER_KEYS]
    if not isinstance(clowder.get("url"), str) or not clowder.get("url"):
        problems.append(("clowder.url", "is required"))
    if clowder.get("api_version", 1) not in (1, 2):
        problems.append(("clowder.api_version", "must be 1 or 2"))
    return problems


def _status_problems(status: object) -> list[tuple[str, str]]:
    if not isinstance(status, Mapping):
        return [("status", "must be a mapping")]
    problems = [(f"status.{key}", "unknown key") for key in status if key not in STATUS_KEYS]
    for key in ("url", "reply_to"):
        if not isinstance(status.get(key), str) or not status.get(key):
            problems.append((f"status.{key}", "is required"))
    every = status.get("every_s", 5.0)
    if isinstance(every, bool) or not isinstance(every, int | float) or every < 0:
        problems.append(("status.every_s", f"must be a number of seconds >= 0, got {every!r}"))
    return problems


def load_spec(path: Path) -> tuple[BatchSpec, Path]:
    """The spec in `path`, and the folder its relative paths are relative to."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the job spec: {exc}") from exc
    except ValueError as exc:
        raise SpecError(f"{path}: not JSON: {exc}") from exc
    return spec_from_mapping(data, str(path)), path.parent


def resolve(folder: Path, path: Path) -> Path:
    """`path` relative to the spec's folder, unless absolute."""
    return path if path.is_absolute() else folder / path
