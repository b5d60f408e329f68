"""The sink registry: every `via` a rule may submit through, its options and how to build it.

Each `SinkKind` names the setting that enables its sink, the per-submission options a rule may
give it (checked here, stored in the outbox row's `options` column, read by the sink) and a
factory. Rules, `submit(...)`, the startup check and the composition root all read this table,
so a new sink option touches this schema, the sink and a test. Pure: the factories import
their adapters only when called.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ports import Sink
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
    build: Callable[[Settings, float], Sink] | None = None  # (settings, per-send timeout)


def _ray_problems(options: Mapping[str, Any]) -> OptionProblems:
    """Ray needs an entrypoint (a non-empty command line); runtime_env is Ray's, plain JSON."""
    problems: OptionProblems = []
    entrypoint, runtime_env = options.get("entrypoint"), options.get("runtime_env")
    if entrypoint is None:
        problems.append(("via", "via: ray needs an entrypoint (the command the Ray job runs)"))
    elif not isinstance(entrypoint, str) or not entrypoint.strip():
        problems.append(("entrypoint", "entrypoint must be a non-empty command line"))
    if runtime_env is None:
        return problems
    if not isinstance(runtime_env, Mapping):
        problems.append(("runtime_env", "runtime_env must be a mapping (Ray's runtime_env)"))
        return problems
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


def _amqp(settings: Settings, timeout_s: float) -> Sink:
    from .sinks.extractor_queue import ExtractorQueueSink

    client = f"switchboard-sink {settings.queue}"
    return ExtractorQueueSink(settings.rabbitmq_uri, client_name=client, timeout_s=timeout_s)


def _clowder_api(settings: Settings, timeout_s: float) -> Sink:
    from .clowder import ClowderClient
    from .sinks.clowder_api import ClowderApiSink

    client = ClowderClient(  # no retries of its own: the relay retries
        settings.clowder_url,
        settings.clowder_key,
        api_version=2 if settings.clowder_version == 2 else 1,
        timeout_s=timeout_s,
        retries=0,
    )
    return ClowderApiSink(client)


def _ray(settings: Settings, timeout_s: float) -> Sink:
    from .sinks.ray_jobs import RayJobSink  # imports Ray only when it sends

    return RayJobSink(settings.ray_address, timeout_s=timeout_s / RayJobSink.REQUESTS_PER_SEND)


SINKS: Mapping[str, SinkKind] = MappingProxyType(
    {
        "amqp": SinkKind("amqp", build=_amqp),
        "clowder-api": SinkKind(
            "clowder-api",
            variable="CLOWDER_URL",
            enabled=lambda settings: bool(settings.clowder_url),
            build=_clowder_api,
        ),
        "ray": SinkKind(
            "ray",
            options=("entrypoint", "runtime_env"),
            check=_ray_problems,
            variable="RAY_ADDRESS",
            enabled=lambda settings: bool(settings.ray_address),
            build=_ray,
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
