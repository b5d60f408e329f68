"""The sink registry: every `via` a rule may submit through, its options and how to build it.

Each `SinkKind` names the setting that enables its sink, the per-submission options a rule may
give it (checked here, stored in the outbox row's `options` column, read by the sink) and a
factory. Rules, `submit(...)`, the startup check and the composition root all read this table,
so a new sink option touches this schema, the sink and a test. Pure: a factory is named by
its module and imported only when the daemon builds the sink.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .ray_batch.options import batch_problems, resources_problems  # pure, Ray-free

if TYPE_CHECKING:
    from .ports import JobMembers, Sink
    from .settings import Settings

OptionProblems = list[tuple[str, str]]  # (the offending key, why)
RAY_JOB_VARIABLE = "SWITCHBOARD_JOB"  # the Ray job's environment variable holding its message


@dataclass(frozen=True, slots=True)
class SinkKind:
    """One target kind: its `via`, its options' schema and how the daemon builds its sink."""

    via: str
    options: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], OptionProblems] = lambda options: []
    variable: str | None = None  # the environment variable whose setting enables it
    enabled: Callable[[Settings], bool] = lambda settings: True
    factory: str = ""  # "module:function" building its sink from (settings, per-send timeout)
    wants_members: bool = False  # its factory also takes the store's `ports.JobMembers`

    def build(
        self, settings: Settings, timeout_s: float, members: JobMembers | None = None
    ) -> Sink:
        """The sink, from its module's factory (imported only now: the registry stays pure
        and free of import cycles)."""
        module, _, name = self.factory.partition(":")
        factory: Callable[..., Sink] = getattr(
            importlib.import_module(module),
            name,  # a registered factory, not a port
        )
        if self.wants_members:
            return factory(settings, timeout_s, members)
        return factory(settings, timeout_s)


def _ray_problems(options: Mapping[str, Any]) -> OptionProblems:
    """Ray needs an entrypoint (a non-empty command line) or a `batch:` processor, not both;
    `resources:` are the driver's; runtime_env is Ray's, plain JSON."""
    problems: OptionProblems = []
    entrypoint, runtime_env = options.get("entrypoint"), options.get("runtime_env")
    batch = options.get("batch")
    if entrypoint is None and batch is None:
        problems.append(
            ("via", "via: ray needs an entrypoint (the command the Ray job runs) or a batch")
        )
    elif entrypoint is not None and batch is not None:
        problems.append(("batch", "via: ray takes an entrypoint or a batch, not both"))
    elif entrypoint is not None and (not isinstance(entrypoint, str) or not entrypoint.strip()):
        problems.append(("entrypoint", "entrypoint must be a non-empty command line"))
    for key, check in (("resources", resources_problems), ("batch", batch_problems)):
        if options.get(key) is not None:
            problems += [(where, f"{where} {why}") for where, why in check(options[key], key)]
    if runtime_env is None:
        return problems
    if not isinstance(runtime_env, Mapping):
        problems.append(("runtime_env", "runtime_env must be a mapping (Ray's runtime_env)"))
        return problems
    if batch is not None and "working_dir" in runtime_env:
        problems.append(
            ("runtime_env", "runtime_env.working_dir is the batch job's own folder; leave it out")
        )
    env_vars = runtime_env.get("env_vars", {})
    if not isinstance(env_vars, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
    ):
        problems.append(("runtime_env", "runtime_env.env_vars must map names to text"))
    elif RAY_JOB_VARIABLE in env_vars:
        problems.append(
            ("runtime_env", f"runtime_env.env_vars must not set {RAY_JOB_VARIABLE} (it is ours)")
        )
    try:
        json.dumps(runtime_env)
    except (TypeError, ValueError):
        problems.append(("runtime_env", "runtime_env must be plain JSON data"))
    return problems


SINKS: Mapping[str, SinkKind] = MappingProxyType(
    {
        "amqp": SinkKind("amqp", factory="switchboard.sinks.extractor_queue:from_settings"),
        "clowder-api": SinkKind(
            "clowder-api",
            variable="CLOWDER_URL",
            enabled=lambda settings: bool(settings.clowder_url),
            factory="switchboard.sinks.clowder_api:from_settings",
        ),
        "ray": SinkKind(
            "ray",
            options=("entrypoint", "runtime_env", "resources", "batch"),
            check=_ray_problems,
            variable="RAY_ADDRESS",
            enabled=lambda settings: bool(settings.ray_address),
            factory="switchboard.sinks.ray_jobs:from_settings",
            wants_members=True,
        ),
    }
)
VIAS: tuple[str, ...] = tuple(SINKS)
OPTION_KEYS: tuple[str, ...] = tuple(dict.fromkeys(k for s in SINKS.values() for k in s.options))


def option_problems(via: str, options: Mapping[str, Any]) -> OptionProblems:
    """(key, reason) for each mistake in a submit's sink options, for `via` (a known one)."""
    kind = SINKS[via]
    problems: OptionProblems = []
    for key in options:
        if key not in kind.options:
            owner = next((s.via for s in SINKS.values() if key in s.options), None)
            where = f"only for via: {owner}" if owner else "not an option of any via"
            problems.append((key, f"{key} is {where}, not via: {via}"))
    if problems:
        return problems
    return kind.check(options)


def plain_options(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only plain-JSON copy (YAML's line-tracking mappings and caller's dicts dropped);
    absent (None) options are left out."""
    present = {k: v for k, v in options.items() if v is not None}
    if not present:
        return MappingProxyType({})
    copied = json.loads(json.dumps(present, default=dict))
    return MappingProxyType(
        {k: MappingProxyType(v) if isinstance(v, dict) else v for k, v in copied.items()}
    )


def as_json(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as plain dicts, for the outbox column."""
    result: dict[str, Any] = json.loads(json.dumps(dict(options), default=dict))
    return result
