"""Checks of a `via: ray` submit's `resources:` and `batch:` mappings, as `(key, reason)` problems.

Pure and Ray-free: the rule loader runs them at load time and turns each problem into
`path:line: reason`; the runner runs the same `batch` check on the job spec it is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

Problem = tuple[str, str]

# The job driver's resources: Ray's entrypoint_num_cpus / _num_gpus / _memory / _resources.
RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory", "custom")
# Per-task options of the batch runner (what `batch:` may hold).
BATCH_KEYS = (
    "processor",
    "processor_args",
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "batch_size",
    "concurrency",
    "max_retries",
    "max_error_fraction",
    "post_metadata",
)
_PROCESSOR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# Ray names these itself; a custom resource of the same name would be ignored or refused.
_RESERVED = ("CPU", "GPU", "memory", "object_store_memory")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def amount_problem(value: object) -> str | None:
    """Why `value` is not a resource amount (a finite number >= 0), or None."""
    if not _is_number(value):
        return f"must be a number, got {type(value).__name__} {value!r}"
    if float(value) < 0:  # type: ignore[arg-type]
        return f"must not be negative, got {value!r}"
    return None


def _count_problem(value: object, minimum: int) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be a whole number, got {type(value).__name__} {value!r}"
    if value < minimum:
        return f"must be at least {minimum}, got {value!r}"
    return None


def _custom_problems(prefix: str, value: object) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [(prefix, f"must be a mapping of resource name to amount, got {value!r}")]
    problems: list[Problem] = []
    for name, amount in value.items():
        key = f"{prefix}.{name}"
        if not isinstance(name, str) or not name:
            problems.append((key, "a resource name must be a non-empty string"))
        elif name in _RESERVED:
            problems.append((key, f"{name!r} is Ray's own resource; use its own key"))
        elif (why := amount_problem(amount)) is not None:
            problems.append((key, why))
    return problems


def _unknown(prefix: str, mapping: Mapping[Any, Any], known: tuple[str, ...]) -> list[Problem]:
    return [
        (f"{prefix}.{key}", f"unknown key {key!r} (expected one of: {', '.join(known)})")
        for key in mapping
        if key not in known
    ]


def resources_problems(value: object, prefix: str = "resources") -> list[Problem]:
    """Every problem of a `resources: {num_cpus, num_gpus, memory, custom: {...}}` mapping."""
    if not isinstance(value, Mapping):
        return [(prefix, f"must be a mapping, got {value!r}")]
    problems = _unknown(prefix, value, RESOURCE_KEYS)
    for key in ("num_cpus", "num_gpus", "memory"):
        if key in value and (why := amount_problem(value[key])) is not None:
            problems.append((f"{prefix}.{key}", why))
    if "custom" in value:
        problems.extend(_custom_problems(f"{prefix}.custom", value["custom"]))
    return problems


def batch_problems(value: object, prefix: str = "batch") -> list[Problem]:
    """Every problem of a `batch:` mapping (`processor` is required)."""
    if not isinstance(value, Mapping):
        return [(prefix, f"must be a mapping, got {value!r}")]
    problems = _unknown(prefix, value, BATCH_KEYS)
    processor = value.get("processor")
    if processor is None:
        problems.append((f"{prefix}.processor", "is required ('package.module:ClassName')"))
    elif not isinstance(processor, str) or not _PROCESSOR.match(processor):
        problems.append(
            (f"{prefix}.processor", f"must be 'package.module:ClassName', got {processor!r}")
        )
    if "processor_args" in value and not isinstance(value["processor_args"], Mapping):
        problems.append((f"{prefix}.processor_args", "must be a mapping of keyword arguments"))
    for key in ("num_cpus", "num_gpus", "memory"):
        if key in value and (why := amount_problem(value[key])) is not None:
            problems.append((f"{prefix}.{key}", why))
    if "resources" in value:
        problems.extend(_custom_problems(f"{prefix}.resources", value["resources"]))
    for key, minimum in (("batch_size", 1), ("concurrency", 1), ("max_retries", 0)):
        if key in value and (why := _count_problem(value[key], minimum)) is not None:
            problems.append((f"{prefix}.{key}", why))
    post = value.get("post_metadata", False)
    if not isinstance(post, bool):
        problems.append((f"{prefix}.post_metadata", f"must be true or false, got {post!r}"))
    if "max_error_fraction" in value:
        fraction = value["max_error_fraction"]
        if not _is_number(fraction) or not 0 <= float(fraction) <= 1:
            problems.append(
                (f"{prefix}.max_error_fraction", f"must be a number from 0 to 1, got {fraction!r}")
            )
    return problems
