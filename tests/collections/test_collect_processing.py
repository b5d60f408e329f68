"""Collect rules through the processor on SQLite and PostgreSQL: counting, firing once, policies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.collections.manifests import manifest_id
from switchboard.jobids import job_id
from switchboard.processor import Processor
from switchboard.store.manifests import iter_members, load_manifest
from switchboard.submissions import COLLECTION_RESOURCE
from switchboard.testing import ListDelivery
from tests.collections.helpers import DATASET, MOSAIC, close, feed, make_processor, mosaic_rule
from tests.integration.clowder_events import file_id, record

KEY = f"mosaic/{DATASET}"


@pytest.fixture
def processors() -> Iterator[list[Processor]]:
    made: list[Processor] = []
    yield made
    for processor in made:
        close(processor)


def build(processors, store, tmp_path, rules_text, **kwargs) -> Processor:
    processor = make_processor(store, tmp_path, rules_text, **kwargs)
    processors.append(processor)
    return processor


def test_a_collection_fires_once_when_its_count_is_reached(store, tmp_path, processors):
    processor = build(processors, store, tmp_path, mosaic_rule("{count: 5}"))

    before = feed(processor, range(1, 5))
    at = feed(processor, [5])
    after = feed(processor, range(6, 9))

    assert before.submissions == [] and after.submissions == []
    [submission] = at.submissions
    assert submission.job_id == job_id("mosaic", MOSAIC, COLLECTION_RESOURCE, KEY, "1")
    assert (submission.resource_type, submission.resource_id) == ("dataset", DATASET)
    assert submission.parameters["manifest_id"] == manifest_id("mosaic", KEY, 1)
    assert submission.parameters["member_count"] == 5
    assert submission.parameters["output_dataset"] == "Full Field"
    with store.unit_of_work() as uow:
        assert uow.progress.count(KEY) == 5  # late members are ignored by default
        manifest = load_manifest(uow.session, submission.parameters["manifest_id"])
        members = list(iter_members(uow.session, manifest.id))
    assert manifest.member_count == 5
    assert [m for m, _ in members] == sorted(file_id(n) for n in range(1, 6))
    assert members[0][1] == {"path": "/data/plot-00001_left.tif", "plot": "00001"}
    assert store.counts_by_status()["pending"] == 1


def test_redelivered_and_duplicate_members_never_double_count(store, tmp_path, processors):
    processor = build(processors, store, tmp_path, mosaic_rule("{count: 3}"))
    feed(processor, [1, 2])
    again = feed(processor, [1, 2])  # the same messages, redelivered
    assert again.duplicates == 2
    copy = record(2)
    copy["body"]["msgid"] = "another-message-for-file-2"
    result = processor.process([ListDelivery.from_record(1, copy)])
    assert result.submissions == []
    with store.unit_of_work() as uow:
        assert uow.progress.count(KEY) == 2
    assert len(feed(processor, [3]).submissions) == 1


def test_next_generation_policy_fires_again_after_as_many_new_members(store, tmp_path, processors):
    rules = mosaic_rule("{count: 2}\n    after_fire: next_generation")
    processor = build(processors, store, tmp_path, rules)
    first = feed(processor, [1, 2]).submissions
    second = feed(processor, [3, 4]).submissions
    assert len(first) == len(second) == 1
    assert first[0].job_id != second[0].job_id
    assert second[0].parameters["generation"] == 2
    with store.unit_of_work() as uow:
        assert list(uow.progress.members(KEY)) == [file_id(3), file_id(4)]


def test_a_batch_crossing_the_threshold_fires_once(store, tmp_path, processors):
    processor = build(processors, store, tmp_path, mosaic_rule("{count: 3}"))
    result = feed(processor, range(1, 11))
    assert len(result.submissions) == 1
    assert result.submissions[0].parameters["member_count"] == 3


def test_fraction_of_a_python_total_and_min_count_must_both_hold(store, tmp_path, processors):
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in range(4):
        (raw / f"{n}.bin").write_text("")
    (tmp_path / "expected.py").write_text(
        "from switchboard.collections.totals import count_files\n"
        "def raw_files(directory):\n    return count_files(directory, '.bin')\n"
    )
    until = (
        "{min_count: 2, fraction: {of: {python: 'expected.py:raw_files', "
        f"args: {{directory: '{raw}'}}}}, at_least: 0.75}}}}"
    )
    processor = build(processors, store, tmp_path, mosaic_rule(until))
    assert feed(processor, [1, 2]).submissions == []  # 2 of 4 is 50 %
    assert len(feed(processor, [3]).submissions) == 1  # 3 of 4 is 75 %
    with store.unit_of_work() as uow:
        assert uow.progress.collection("mosaic", KEY).expected == 4


def test_a_failing_total_is_the_rules_error_and_the_member_still_counts(
    store, tmp_path, processors
):
    (tmp_path / "broken.py").write_text("def total():\n    raise OSError('raw folder gone')\n")
    until = "{fraction: {of: {python: 'broken.py:total'}, at_least: 0.5}}"
    processor = build(processors, store, tmp_path, mosaic_rule(until))
    result = feed(processor, [1])
    assert [(r, e) for r, _, e in result.rule_errors] == [
        ("mosaic", "collect: OSError: raw folder gone")
    ]
    assert len(result.committed) == 1
    with store.unit_of_work() as uow:
        assert uow.progress.count(KEY) == 1


def test_all_of_fires_when_every_expected_member_is_in(store, tmp_path, processors):
    expected = [file_id(2), file_id(4)]
    processor = build(processors, store, tmp_path, mosaic_rule(f"{{all_of: {expected}}}"))
    assert feed(processor, [1, 2, 3]).submissions == []
    assert len(feed(processor, [4]).submissions) == 1


def test_quiet_for_fires_only_after_the_deadline_passes(store, tmp_path, processors, clock):
    from switchboard.collections.sweeper import Sweeper

    processor = build(processors, store, tmp_path, mosaic_rule("{quiet_for: 10m, min_count: 2}"))
    sweeper = Sweeper(processor)
    feed(processor, [1, 2])
    clock.advance(9 * 60)
    assert sweeper.sweep() == []
    feed(processor, [3])  # a new member pushes the deadline out
    clock.advance(9 * 60)
    assert sweeper.sweep() == []
    clock.advance(61)
    [firing] = sweeper.sweep()
    assert firing.generation == 1 and len(firing.submissions) == 1
    assert firing.submissions[0].parameters["member_count"] == 3
    clock.advance(3600)
    assert sweeper.sweep() == []
    assert store.counts_by_status()["pending"] == 1


def test_quiet_for_waits_for_its_other_conditions(store, tmp_path, processors, clock):
    from switchboard.collections.sweeper import Sweeper

    processor = build(processors, store, tmp_path, mosaic_rule("{quiet_for: 30s, min_count: 3}"))
    feed(processor, [1, 2])
    clock.advance(31)
    assert Sweeper(processor).sweep() == []
    feed(processor, [3])
    clock.advance(31)
    assert len(Sweeper(processor).sweep()) == 1


def test_the_manifest_file_is_written_before_the_firing_is_sent(store, tmp_path, processors):
    from switchboard.collections.manifests import ManifestFileSink
    from switchboard.testing import RecordingSink

    manifest_dir = tmp_path / "manifests"
    rules = mosaic_rule("{count: 3}\n    manifest_file: true")
    processor = build(processors, store, tmp_path, rules, manifest_dir=str(manifest_dir))
    [submission] = feed(processor, [3, 1, 2]).submissions
    path = Path(submission.parameters["file_paths"])
    assert path.parent == manifest_dir and not path.exists()

    seen_on_send: list[bool] = []

    class Checking(RecordingSink):
        def send(self, row):
            seen_on_send.append(path.exists())
            super().send(row)

    sink = ManifestFileSink(Checking(), store, str(manifest_dir))
    [row] = store.due_outbox(10)
    sink.send(row)
    assert seen_on_send == [True]
    assert json.loads(path.read_text()) == [f"/data/plot-{n:05d}_left.tif" for n in (1, 2, 3)]
    path.unlink()  # lost (say, a crash between two relays): the next send writes it again
    sink.send(row)
    assert json.loads(path.read_text())[0] == "/data/plot-00001_left.tif"
