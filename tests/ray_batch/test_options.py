"""The `resources:` and `batch:` checks return every problem as `(key, reason)`."""

from __future__ import annotations

import pytest

from switchboard.ray_batch.options import batch_problems, resources_problems


def test_good_resources_have_no_problems() -> None:
    resources = {"num_cpus": 2, "num_gpus": 0.5, "memory": 2e9, "custom": {"bigdb": 1}}
    assert resources_problems(resources) == []


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ({"num_cpus": -1}, ("resources.num_cpus", "must not be negative, got -1")),
        ({"num_gpus": "one"}, ("resources.num_gpus", "must be a number, got str 'one'")),
        ({"num_cpus": True}, ("resources.num_cpus", "must be a number, got bool True")),
        ({"memory": float("nan")}, ("resources.memory", "must be a number, got float nan")),
        ({"custom": {"bigdb": -0.5}}, ("resources.custom.bigdb", "must not be negative, got -0.5")),
        (
            {"custom": {"CPU": 1}},
            ("resources.custom.CPU", "'CPU' is Ray's own resource; use its own key"),
        ),
        (
            {"cpus": 1},
            (
                "resources.cpus",
                "unknown key 'cpus' (expected one of: num_cpus, num_gpus, memory, custom)",
            ),
        ),
        (
            {"custom": [1]},
            ("resources.custom", "must be a mapping of resource name to amount, got [1]"),
        ),
    ],
)
def test_a_bad_resources_mapping_names_the_key_and_why(
    resources: dict[str, object], problem: tuple[str, str]
) -> None:
    assert resources_problems(resources) == [problem]


def test_every_problem_of_a_batch_mapping_is_reported_at_once() -> None:
    problems = batch_problems(
        {
            "processor": "plotml.models.Classifier",
            "batch_size": 0,
            "concurrency": 2.5,
            "max_retries": -1,
            "max_error_fraction": 2,
            "resources": {"bigdb": "lots"},
            "gpus": 1,
        }
    )
    assert dict(problems) == {
        "batch.gpus": (
            "unknown key 'gpus' (expected one of: processor, processor_args, num_cpus, num_gpus, "
            "memory, resources, batch_size, concurrency, max_retries, max_error_fraction, "
            "post_metadata)"
        ),
        "batch.processor": "must be 'package.module:ClassName', got 'plotml.models.Classifier'",
        "batch.resources.bigdb": "must be a number, got str 'lots'",
        "batch.batch_size": "must be at least 1, got 0",
        "batch.concurrency": "must be a whole number, got float 2.5",
        "batch.max_retries": "must be at least 0, got -1",
        "batch.max_error_fraction": "must be a number from 0 to 1, got 2",
    }


def test_a_batch_mapping_needs_a_processor_and_accepts_the_issue_example() -> None:
    assert batch_problems({}) == [("batch.processor", "is required ('package.module:ClassName')")]
    example = {
        "processor": "plotml.models:Classifier",
        "num_cpus": 1,
        "num_gpus": 0.25,
        "resources": {"bigdb": 1},
        "batch_size": 16,
        "concurrency": 4,
        "max_retries": 2,
    }
    assert batch_problems(example) == []
