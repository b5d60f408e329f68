"""Value objects: dataset views and the submit() builder rules use."""

import pytest

from switchboard.jobids import job_id
from switchboard.model import DatasetView, EventKind, FileInfo, kinds_matching, submit


def _view() -> DatasetView:
    files = (
        FileInfo("1", "a_left.bin"),
        FileInfo("2", "a_right.bin"),
        FileInfo("3", "a_metadata.json"),
    )
    return DatasetView("ds", "stereoTop - 2017-05-01__10-00-00-000", files)


def test_dataset_view_counts_files_by_suffix_prefix_and_glob():
    view = _view()
    assert view.count() == 3
    assert view.count(suffix=".bin") == 2
    assert view.count(prefix="a_left") == 1
    assert view.count(glob="*_right.*") == 1
    assert view.has("a_metadata.json") and not view.has("b.json")


def test_with_file_replaces_a_file_of_the_same_id():
    view = _view().with_file(FileInfo("3", "renamed.json"))
    assert view.count() == 3 and view.has("renamed.json")


def test_submit_rejects_an_unknown_resource_type():
    with pytest.raises(ValueError, match="resource"):
        submit("x", resource="collection")  # type: ignore[arg-type]


def test_event_kind_globs_select_kinds():
    assert kinds_matching(["manual.*"]) == {EventKind.MANUAL_FILE, EventKind.MANUAL_DATASET}
    assert kinds_matching(["dataset.file.added"]) == {EventKind.FILE_ADDED}


def test_job_ids_are_deterministic_and_distinguish_every_part():
    base = job_id("r", "x", "dataset", "d1")
    assert base == job_id("r", "x", "dataset", "d1")
    others = {
        job_id("r2", "x", "dataset", "d1"),
        job_id("r", "y", "dataset", "d1"),
        job_id("r", "x", "file", "d1"),
        job_id("r", "x", "dataset", "d2"),
        job_id("r", "x", "dataset", "d1", "1"),
    }
    assert base not in others and len(others) == 5
