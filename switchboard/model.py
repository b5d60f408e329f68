"""Value objects shared by every layer: events, files, dataset views, submissions."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from .sink_registry import SINKS, VIAS, option_problems, plain_options

ResourceType = Literal["file", "dataset"]


class EventKind(StrEnum):
    """What happened in Clowder; rules select events by these names (globs allowed)."""

    FILE_ADDED = "dataset.file.added"
    FILE_CREATED = "file.created"
    METADATA_ADDED = "metadata.added"
    MANUAL_FILE = "manual.file"
    MANUAL_DATASET = "manual.dataset"


EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file as Switchboard knows it (from an event or the inventory)."""

    id: str
    name: str = ""
    mime_type: str = ""
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One Clowder message, normalised from whichever body shape it arrived in.

    `body` is the parsed JSON object exactly as received and `raw` the undecoded bytes, so a
    submission can forward the original and a dead letter can keep it intact.
    """

    kind: EventKind
    message_id: str
    resource_id: str
    dataset_id: str | None
    file: FileInfo | None
    dataset_name: str | None = None
    host: str = ""
    routing_key: str = ""
    reply_to: str | None = None
    correlation_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    body: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    properties: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    raw: bytes = b""


def _name_matches(name: str, *, suffix: str | None, prefix: str | None, glob: str | None) -> bool:
    if suffix is not None and not name.endswith(suffix):
        return False
    if prefix is not None and not name.startswith(prefix):
        return False
    return glob is None or fnmatch.fnmatchcase(name, glob)


@dataclass(frozen=True, slots=True)
class DatasetView:
    """Read-only picture of a dataset for rules: its name and every file seen in it so far."""

    id: str
    name: str | None = None
    files: tuple[FileInfo, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    def count(
        self, *, suffix: str | None = None, prefix: str | None = None, glob: str | None = None
    ) -> int:
        """How many files' names match every given test (all files when none is given)."""
        return sum(
            1 for f in self.files if _name_matches(f.name, suffix=suffix, prefix=prefix, glob=glob)
        )

    def has(self, name: str) -> bool:
        """Whether a file of exactly this name is in the dataset."""
        return any(f.name == name for f in self.files)

    def names(self) -> list[str]:
        return [f.name for f in self.files]

    def with_file(self, file: FileInfo) -> DatasetView:
        """This view plus one file (replacing a file of the same id)."""
        kept = tuple(f for f in self.files if f.id != file.id)
        return DatasetView(self.id, self.name, (*kept, file), self.metadata)


# Parameters a collection firing sets on its submissions; `file_paths` + `manifest_id` make the
# relay write a manifest file, so no rule may set them itself.
RESERVED_PARAMETERS: frozenset[str] = frozenset(
    {"manifest_id", "collection", "generation", "member_count", "file_paths"}
)


def reserved_parameter_problem(parameters: Iterable[str]) -> str | None:
    """Why these parameter names cannot be used by a rule, or None when none is reserved."""
    reserved = sorted(RESERVED_PARAMETERS.intersection(parameters))
    if not reserved:
        return None
    names = ", ".join(repr(n) for n in reserved)
    return (
        f"parameter {names} is reserved: collection firings set "
        f"{', '.join(sorted(RESERVED_PARAMETERS))}"
    )


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """What a rule asks for: send this resource to that extractor (parameters already rendered).

    `options` are the sink's own settings for this submission (via ray: `entrypoint`,
    `runtime_env`); `sink_registry` says which options each via takes and checks them.
    """

    extractor: str
    resource: ResourceType = "dataset"
    via: str = "amqp"
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


def submit(
    extractor: str,
    *,
    resource: ResourceType = "dataset",
    via: str = "amqp",
    parameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> SubmitRequest:
    """Build the value a Python rule returns to send work to `extractor`.

    Further keyword arguments are the target's options: `via="ray"` submits a Ray job that
    runs `entrypoint` (required) in `runtime_env`. `parameters` may not use the names
    collections set (`RESERVED_PARAMETERS`). Any mistake is a ValueError.
    """
    if resource not in ("file", "dataset"):
        raise ValueError(f"resource must be 'file' or 'dataset', not {resource!r}")
    if via not in SINKS:
        names = ", ".join(repr(v) for v in VIAS)
        raise ValueError(f"via must be one of {names}, not {via!r}")
    given = {k: v for k, v in options.items() if v is not None}
    problems = option_problems(via, given)
    if problems:
        raise ValueError("; ".join(reason for _, reason in problems))
    reserved = reserved_parameter_problem(parameters or {})
    if reserved is not None:
        raise ValueError(reserved)
    return SubmitRequest(
        extractor, resource, via, MappingProxyType(dict(parameters or {})), plain_options(given)
    )


@dataclass(frozen=True, slots=True)
class Submission:
    """One unit of outgoing work with its deterministic job id (the idempotency key).

    Built by `submissions.submission_for` only; `options` are its request's (the outbox keeps
    them in a column of their own for the sink).
    """

    job_id: str
    rule: str
    extractor: str
    resource_type: ResourceType
    resource_id: str
    via: str
    parameters: Mapping[str, Any]
    event_message_id: str
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict of one rule on one event, with the reasons that explain it."""

    rule: str
    matched: bool
    reasons: tuple[str, ...] = ()
    requests: tuple[SubmitRequest, ...] = ()
    error: str | None = None
    generation: str = "0"  # of the rule's job, from its re-run policy (see rules.rerun)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything the engine concluded about one event."""

    event: Event
    decisions: tuple[Decision, ...] = field(default_factory=tuple)
    submissions: Sequence[Submission] = ()  # of the matched decisions (built when first read)

    @property
    def matched(self) -> list[Decision]:
        return [d for d in self.decisions if d.matched]

    @property
    def failures(self) -> list[Decision]:
        return [d for d in self.decisions if d.error is not None]


def kinds_matching(patterns: Iterable[str]) -> frozenset[EventKind]:
    """The event kinds that any of the glob `patterns` selects."""
    return frozenset(k for k in EventKind for p in patterns if fnmatch.fnmatchcase(k.value, p))
