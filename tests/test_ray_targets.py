"""`via: ray` targets without Ray: loading, Python `submit`, the outbox row, the startup check."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import submit
from switchboard.app import refuse_rules_without_their_sink
from switchboard.collections.sweeper import Sweeper
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.events import event_from_record
from switchboard.model import Submission
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.sink_registry import as_json
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery

FIXTURE = Path(__file__).parent / "fixtures" / "v1_dataset_file_added.json"

RAY_RULE = """\
- name: mosaic-on-ray
  when:
    file.name: {suffix: "_left.tif"}
  submit:
    extractor: fieldmosaic
    via: ray
    entrypoint: "python -m fieldmosaic --out {file.name}"
    runtime_env: {env_vars: {MOSAIC_MODE: full}, pip: [numpy]}
    parameters: {date: "{file.name}"}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path])


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleLoadError) as refused:
        load(tmp_path, text)
    return [f"{p.line}: {p.reason}" for p in refused.value.problems]


def a_ray_submit(lines: str) -> str:
    """A rule whose submit entry is `lines` (indented under `submit:`)."""
    return "- name: r\n  submit:\n    extractor: fieldmosaic\n" + lines


def test_a_ray_submit_loads_with_its_entrypoint_and_runtime_env(tmp_path: Path) -> None:
    [rule] = load(tmp_path, RAY_RULE)
    [spec] = rule.submits
    assert spec.via == "ray"
    assert spec.options["entrypoint"] == "python -m fieldmosaic --out {file.name}"  # no template
    assert spec.options["runtime_env"] == {"env_vars": {"MOSAIC_MODE": "full"}, "pip": ["numpy"]}


def test_via_ray_without_an_entrypoint_is_refused_at_its_via_line(tmp_path: Path) -> None:
    assert problems(tmp_path, a_ray_submit("    via: ray\n")) == [
        "4: rule 'r': via: ray needs an entrypoint (the command the Ray job runs) or a batch"
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "    entrypoint: python -m x\n",
            "4: rule 'r': entrypoint is only for via: ray, not via: amqp",
        ),
        (
            "    via: clowder-api\n    runtime_env: {pip: [numpy]}\n",
            "5: rule 'r': runtime_env is only for via: ray, not via: clowder-api",
        ),
        (
            "    via: ray\n    entrypoint: ''\n",
            "5: rule 'r': entrypoint must be a non-empty command line",
        ),
        (
            "    via: ray\n    entrypoint: [python, x.py]\n",
            "5: rule 'r': entrypoint must be a non-empty command line",
        ),
        (
            "    via: ray\n    entrypoint: x\n    runtime_env: [numpy]\n",
            "6: rule 'r': runtime_env must be a mapping (Ray's runtime_env)",
        ),
        (
            "    via: ray\n    entrypoint: x\n    runtime_env: {env_vars: {N: 2}}\n",
            "6: rule 'r': runtime_env.env_vars must map names to text",
        ),
        (
            "    via: ray\n    entrypoint: x\n    runtime_env: {env_vars: {SWITCHBOARD_JOB: x}}\n",
            "6: rule 'r': runtime_env.env_vars must not set SWITCHBOARD_JOB (it is ours)",
        ),
        (
            "    via: ray\n    entrypoint: x\n    entry_point: y\n",
            "6: rule 'r': unknown key 'entry_point' in submit (did you mean 'entrypoint'?)",
        ),
    ],
)
def test_ray_options_that_do_not_fit_are_refused_at_their_line(
    tmp_path: Path, lines: str, expected: str
) -> None:
    assert problems(tmp_path, a_ray_submit(lines)) == [expected]


def test_a_python_rule_submits_to_ray_with_an_entrypoint() -> None:
    env = {"env_vars": {"A": "1"}}
    request = submit("fieldmosaic", via="ray", entrypoint="python -m fieldmosaic", runtime_env=env)
    env["env_vars"]["A"] = "changed later"
    assert (request.via, request.options["entrypoint"]) == ("ray", "python -m fieldmosaic")
    assert request.options["runtime_env"] == {"env_vars": {"A": "1"}}  # a copy, as returned


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"via": "ray"}, "via: ray needs an entrypoint"),
        ({"via": "amqp", "entrypoint": "x"}, "entrypoint is only for via: ray"),
        ({"via": "ray", "entrypoint": "x", "runtime_env": {"f": object()}}, "plain JSON data"),
    ],
)
def test_python_submit_refuses_ray_options_that_do_not_fit(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        submit("fieldmosaic", **kwargs)


def submission(via: str, **options: object) -> Submission:
    return Submission(
        job_id="job-1",
        rule="mosaic-on-ray",
        extractor="fieldmosaic",
        resource_type="dataset",
        resource_id="65a1f0a0e4b0a1b2c3d4e500",
        via=via,
        parameters={"manifest_id": "m-1"},
        event_message_id="msg-1",
        options=options,
    )


def test_a_ray_submission_gets_the_usual_body_and_properties_its_options_stay_its_own() -> None:
    event = event_from_record(json.loads(FIXTURE.read_text(encoding="utf-8")))
    amqp_body, amqp_properties = extractor_message(event, submission("amqp"))
    ray_body, ray_properties = extractor_message(
        event, submission("ray", entrypoint="python -m x", runtime_env={"pip": ["numpy"]})
    )
    assert ray_body == amqp_body
    amqp_properties.pop("correlation_id"), ray_properties.pop("correlation_id")  # fresh uuids
    assert ray_properties == amqp_properties  # no Ray options smuggled in AMQP properties


def test_the_daemon_refuses_ray_rules_without_ray_address(tmp_path: Path) -> None:
    ruleset = load(tmp_path, RAY_RULE)
    with pytest.raises(RuleLoadError) as refused:
        refuse_rules_without_their_sink(ruleset, Settings())
    assert str(refused.value) == (
        f"{tmp_path / 'rules.yaml'}:1: rule 'mosaic-on-ray' submits via ray "
        "but RAY_ADDRESS is not set"
    )
    refuse_rules_without_their_sink(ruleset, Settings(ray_address="http://ray-head:8265"))


def test_the_daemon_starts_without_ray_address_when_no_rule_needs_it(tmp_path: Path) -> None:
    ruleset = load(tmp_path, "- {name: r, submit: {extractor: x, via: amqp}}\n")
    refuse_rules_without_their_sink(ruleset, Settings())


def test_the_daemon_refuses_clowder_api_rules_without_clowder_url(tmp_path: Path) -> None:
    ruleset = load(tmp_path, "- {name: r, submit: {extractor: x, via: clowder-api}}\n")
    with pytest.raises(RuleLoadError) as refused:
        refuse_rules_without_their_sink(ruleset, Settings())
    assert str(refused.value) == (
        f"{tmp_path / 'rules.yaml'}:1: rule 'r' submits via clowder-api but CLOWDER_URL is not set"
    )
    refuse_rules_without_their_sink(ruleset, Settings(clowder_url="http://clowder:9000"))


# --- a quiet_for collection keeps its Ray target across the sweeper's trigger ----------------

QUIET_RAY_RULE = """\
- name: mosaic-on-ray
  when:
    file.name: {suffix: "_left.tif"}
  collect:
    key: "mosaic/{dataset.id}"
    member: "{file.id}"
    until: {quiet_for: 1m, min_count: 2}
  submit:
    extractor: fieldmosaic
    via: ray
    entrypoint: python -m fieldmosaic
    runtime_env: {env_vars: {MOSAIC_MODE: full}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def file_added(n: int) -> dict:
    """The fixture's v1 event, as if file `n` were added to its dataset."""
    record = json.loads(FIXTURE.read_text(encoding="utf-8"))
    body = copy.deepcopy(record["body"])
    fid = f"{n:024x}"
    body.update(id=fid, intermediateId=fid, msgid=f"msg-{n}")
    body["source"]["id"]["id"] = fid
    body["source"]["extra"]["filename"] = f"plot-{n}_left.tif"
    return {**record, "body": body}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    made = SqlStore(url, clock=clock)
    yield made
    made.close()


def test_a_swept_ray_collection_keeps_its_entrypoint(tmp_path: Path, store, clock) -> None:
    processor = Processor(Engine(load(tmp_path, QUIET_RAY_RULE)), store, extractor_message)
    try:
        processor.process([ListDelivery.from_record(n, file_added(n)) for n in (1, 2)])
        clock.now += timedelta(minutes=2)
        [firing] = Sweeper(processor).sweep()
    finally:
        processor.engine.close()
    [row] = store.due_outbox(10, now=clock.now + timedelta(seconds=1))
    assert row.submission.job_id == firing.submissions[0].job_id
    assert as_json(row.submission.options) == {
        "entrypoint": "python -m fieldmosaic",
        "runtime_env": {"env_vars": {"MOSAIC_MODE": "full"}},
    }
    assert "ray" not in row.properties
    assert row.body["parameters"]["member_count"] == 2
