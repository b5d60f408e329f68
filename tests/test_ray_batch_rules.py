"""`resources:` and `batch:` of a `via: ray` submit: loading, Python `submit`, the outbox row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchboard import submit
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import load_rules
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.test_ray_targets import file_added

BATCH_RULE = """\
- name: plots
  when:
    file.name: {suffix: "_left.tif"}
  collect:
    key: "plots/{dataset.id}"
    member: "{file.id}"
    data: {path: "/data/{file.name}", name: "{file.name}"}
    until: {count: 3}
  submit:
    extractor: plot-classifier
    via: ray
    resources: {num_cpus: 1, memory: 500000000, custom: {bigdb: 0.5}}
    batch:
      processor: "plotml.models:Classifier"
      num_cpus: 1
      num_gpus: 0.25
      resources: {bigdb: 1}
      batch_size: 16
      concurrency: 4
      max_retries: 2
      max_error_fraction: 0.1
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path])


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleLoadError) as refused:
        load(tmp_path, text)
    return [str(p).split(":", 1)[1] for p in refused.value.problems]


def test_a_batch_rule_loads_with_its_driver_resources_and_per_task_options(
    tmp_path: Path,
) -> None:
    [rule] = load(tmp_path, BATCH_RULE)
    [spec] = rule.submits
    assert spec.options["resources"] == {
        "num_cpus": 1,
        "memory": 500000000,
        "custom": {"bigdb": 0.5},
    }
    assert spec.options["batch"]["processor"] == "plotml.models:Classifier"
    assert spec.options["batch"]["resources"] == {"bigdb": 1}
    assert "entrypoint" not in spec.options


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "custom: {bigdb: 0.5}",
            "custom: {bigdb: -1}",
            "12: rule 'plots': resources.custom.bigdb must not be negative, got -1",
        ),
        (
            "memory: 500000000",
            "memory: lots",
            "12: rule 'plots': resources.memory must be a number, got str 'lots'",
        ),
        (
            "num_cpus: 1, memory",
            "num_cpu: 1, memory",
            "12: rule 'plots': resources.num_cpu unknown key 'num_cpu' (expected one of: "
            "num_cpus, num_gpus, memory, custom)",
        ),
        (
            "      num_gpus: 0.25",
            "      num_gpus: -0.25",
            "16: rule 'plots': batch.num_gpus must not be negative, got -0.25",
        ),
        (
            "      batch_size: 16",
            "      batch_size: sixteen",
            "18: rule 'plots': batch.batch_size must be a whole number, got str 'sixteen'",
        ),
        (
            "      concurrency: 4",
            "      concurency: 4",
            "19: rule 'plots': batch.concurency unknown key 'concurency' (expected one of: "
            "processor, processor_args, num_cpus, num_gpus, memory, resources, batch_size, "
            "concurrency, max_retries, max_error_fraction, post_metadata)",
        ),
        (
            '      processor: "plotml.models:Classifier"',
            '      processor: "import os; os.system(1)"',
            "14: rule 'plots': batch.processor must be 'package.module:ClassName', got "
            "'import os; os.system(1)'",
        ),
        (
            "    via: ray\n",
            "    via: ray\n    entrypoint: python -m x\n",
            "14: rule 'plots': via: ray takes an entrypoint or a batch, not both",
        ),
    ],
)
def test_bad_resources_or_batch_options_are_refused_at_their_own_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in BATCH_RULE
    assert problems(tmp_path, BATCH_RULE.replace(old, new)) == [expected]


def test_resources_and_batch_are_only_for_via_ray(tmp_path: Path) -> None:
    text = BATCH_RULE.replace("    via: ray\n", "    via: amqp\n")
    assert problems(tmp_path, text) == [
        "12: rule 'plots': resources is only for via: ray, not via: amqp",
        "13: rule 'plots': batch is only for via: ray, not via: amqp",
    ]


def test_a_python_rule_submits_a_batch_job_with_resources() -> None:
    request = submit(
        "plot-classifier",
        via="ray",
        resources={"num_gpus": 1, "custom": {"bigdb": 1}},
        batch={"processor": "plotml.models:Classifier", "batch_size": 8},
    )
    assert request.options["resources"] == {"num_gpus": 1, "custom": {"bigdb": 1}}
    assert request.options["batch"] == {"processor": "plotml.models:Classifier", "batch_size": 8}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": {"processor": "m:C"}, "resources": {"num_cpus": -2}}, "must not be negative"),
        ({"batch": {"processor": "m:C", "gpus": 1}}, "unknown key 'gpus'"),
        ({"batch": {"processor": "m:C"}, "runtime_env": {"working_dir": "."}}, "working_dir"),
        ({"batch": {"num_cpus": 1}}, "batch.processor is required"),
    ],
)
def test_python_submit_refuses_batch_options_that_do_not_fit(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        submit("plot-classifier", via="ray", **kwargs)


def test_the_options_ride_in_the_outbox_options_column_never_in_amqp_properties(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    store = SqlStore(url)
    processor = Processor(Engine(load(tmp_path, BATCH_RULE)), store, extractor_message)
    try:
        processor.process([ListDelivery.from_record(n, file_added(n)) for n in (1, 2, 3)])
        [row] = store.due_outbox(10)
        members = list(store.manifest_members(row.submission.parameters["manifest_id"]))
    finally:
        processor.engine.close()
        store.close()
    assert row.submission.options["batch"]["concurrency"] == 4
    assert row.submission.options["resources"]["custom"] == {"bigdb": 0.5}
    said = json.dumps([row.properties, row.body])
    assert "bigdb" not in said and "plotml" not in said
    assert [m["path"] for m in members] == [f"/data/plot-{n}_left.tif" for n in (1, 2, 3)]
    assert [m["name"] for m in members] == [f"plot-{n}_left.tif" for n in (1, 2, 3)]
