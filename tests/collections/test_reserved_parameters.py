"""Rules cannot set the parameters collections own, and manifest files stay in their folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from switchboard.collections.manifests import ManifestFileSink, with_manifest_files
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError, SubmissionRejected
from switchboard.model import RESERVED_PARAMETERS, submit
from switchboard.relay import Relay
from switchboard.rules import load_rules
from switchboard.testing import RecordingSink
from tests.rules.events import make_event, view_of
from tests.store.helpers import submission


def test_a_yaml_rule_setting_file_paths_or_manifest_id_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: escape\n"
        "  submit:\n"
        "    extractor: x\n"
        "    parameters:\n"
        "      file_paths: /etc/cron.d/owned\n"
        "      manifest_id: owned\n"
        "      mode: fast\n"
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    reserved = "collection firings set collection, file_paths, generation, manifest_id, "
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5: rule 'escape': parameter 'file_paths' is reserved: {reserved}member_count",
        f"{path}:6: rule 'escape': parameter 'manifest_id' is reserved: {reserved}member_count",
    ]


@pytest.mark.parametrize("name", sorted(RESERVED_PARAMETERS))
def test_submit_refuses_every_reserved_parameter_name(name: str) -> None:
    with pytest.raises(ValueError, match=f"parameter '{name}' is reserved"):
        submit("x", parameters={name: "anything"})


def test_a_python_rule_submitting_a_reserved_parameter_is_that_rules_error(tmp_path: Path) -> None:
    (tmp_path / "escape.py").write_text(
        "from switchboard import rule, submit\n"
        "@rule\n"
        "def escape(event, dataset):\n"
        "    return submit('x', parameters={'manifest_id': 'm', 'file_paths': '/tmp/owned'})\n"
        "@rule\n"
        "def fine(event, dataset):\n"
        "    return submit('y')\n"
    )
    engine = Engine(load_rules([tmp_path]))
    try:
        event = make_event()
        evaluation = engine.evaluate(event, view_of(event))
        [failure] = evaluation.failures
        assert failure.rule == "escape" and "is reserved" in (failure.error or "")
        assert [s.extractor for s in evaluation.submissions] == ["y"]
    finally:
        engine.close()


def legacy_rule(tmp_path: Path, parameters: str) -> Engine:
    (tmp_path / "rules.py").write_text(
        "def mosaic(extractor, connector, host, secret_key, resource, rulemap):\n"
        f"    return {{'fieldmosaic': {{'process': True, 'parameters': {parameters}}}}}\n"
    )
    (tmp_path / "rule_extractor_map.json").write_text(
        '{"mosaic": {"extractors": {"fieldmosaic": {}}}}'
    )
    return Engine(load_rules([tmp_path]))


def test_a_legacy_rule_keeps_its_own_file_paths_but_cannot_set_a_manifest_id(
    tmp_path: Path,
) -> None:
    engine = legacy_rule(tmp_path, "{'file_paths': '/data/list.json', 'manifest_id': 'm'}")
    try:
        event = make_event()
        (decision,) = engine.evaluate(event, view_of(event)).decisions
        assert "parameter 'manifest_id' is reserved" in (decision.error or "")
    finally:
        engine.close()
    engine = legacy_rule(tmp_path, "{'file_paths': '/data/list.json', 'output': 'Full Field'}")
    try:
        event = make_event()
        [request] = engine.evaluate(event, view_of(event)).decisions[0].requests
        assert dict(request.parameters) == {"file_paths": "/data/list.json", "output": "Full Field"}
    finally:
        engine.close()


def queue_manifest_row(store, path: str, mid: str) -> None:
    row = submission("job-manifest", parameters={"manifest_id": mid, "file_paths": path})
    with store.unit_of_work() as uow:
        uow.add_submission(row, {"job_id": "job-manifest"}, {"message_id": "job-manifest"})


@pytest.mark.parametrize(
    ("where", "mid"),
    [
        ("outside/m1.json", "m1"),  # another folder
        ("manifests/../outside/m1.json", "m1"),  # climbing out with ..
        ("manifests/other.json", "m1"),  # not the manifest's own name
        ("outside/m1.json", "../outside/m1"),  # the id itself climbing out
    ],
)
def test_the_relay_refuses_a_manifest_file_outside_its_folder_and_writes_nothing(
    store, tmp_path: Path, where: str, mid: str
) -> None:
    (tmp_path / "manifests").mkdir()
    target = tmp_path / where
    queue_manifest_row(store, str(target), mid)
    sink = RecordingSink()
    relay = Relay(store, with_manifest_files({"amqp": sink}, store, str(tmp_path / "manifests")))
    assert relay.run_once().failed == 1  # refused outright, not retried
    [row] = store.recent_submissions(1)
    assert row.status == "failed"
    assert "not <manifest_id>.json inside SWITCHBOARD_MANIFEST_DIR" in (row.last_error or "")
    assert sink.rows == []
    assert not target.exists() and not (tmp_path / "outside").exists()


def test_a_symbolic_link_in_the_manifest_folder_cannot_lead_the_file_elsewhere(
    store, tmp_path: Path
) -> None:
    folder, outside = tmp_path / "manifests", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    os.symlink(outside / "m1.json", folder / "m1.json")
    queue_manifest_row(store, str(folder / "m1.json"), "m1")
    sink = ManifestFileSink(RecordingSink(), store, str(folder))
    [row] = store.due_outbox(10)
    with pytest.raises(SubmissionRejected):
        sink.send(row)
    assert list(outside.iterdir()) == []


def test_without_a_manifest_folder_no_manifest_file_is_written(store, tmp_path: Path) -> None:
    target = tmp_path / "m1.json"
    queue_manifest_row(store, str(target), "m1")
    sink = ManifestFileSink(RecordingSink(), store, "")
    [row] = store.due_outbox(10)
    with pytest.raises(SubmissionRejected, match="SWITCHBOARD_MANIFEST_DIR is not set"):
        sink.send(row)
    assert not target.exists()


def test_a_manifest_file_inside_its_folder_is_still_written(store, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    queue_manifest_row(store, str(folder / "m1.json"), "m1")
    inner = RecordingSink()
    sink = ManifestFileSink(inner, store, str(folder))
    [row] = store.due_outbox(10)
    sink.send(row)
    assert (folder / "m1.json").read_text() == "[\n]\n"  # no members recorded for "m1"
    assert inner.job_ids == ["job-manifest"]
