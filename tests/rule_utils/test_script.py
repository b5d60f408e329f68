"""`rule_utils.connect(url)`: a script's own transaction, committed on success, else rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

import rule_utils
from switchboard.store.migrate import upgrade
from tests.conftest import Database


def test_what_a_script_adds_is_committed_and_seen_by_the_next_script(database: Database) -> None:
    with rule_utils.connect(database.url, schema=database.schema) as db:
        rule_utils.submitProgressToDB("fullField", "mosaic", "day/1", "f1", "/a/f1.tif")
        assert db.add_member("fullField", "day/1", "f2", {"file_path": "/a/f2.tif"})
    with rule_utils.connect(database.url, schema=database.schema) as db:
        assert db.count("day/1") == 2
        assert rule_utils.retrieveProgressFromDB("day/1") == {
            "ids": {"f1": "/a/f1.tif", "f2": "/a/f2.tif"}
        }
    assert not rule_utils.is_bound()


def test_a_script_that_raises_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(ZeroDivisionError), rule_utils.connect(database.url, schema=database.schema):
        rule_utils.add_member("fullField", "day/1", "f1")
        1 / 0  # noqa: B018 (the script's failure under test)
    with rule_utils.connect(database.url, schema=database.schema):
        assert rule_utils.count("day/1") == 0


def test_commit_keeps_work_done_before_a_later_failure(database: Database) -> None:
    with (
        pytest.raises(RuntimeError),
        rule_utils.connect(database.url, schema=database.schema) as db,
    ):
        rule_utils.add_member("fullField", "day/1", "kept")
        db.commit()
        rule_utils.add_member("fullField", "day/1", "lost")
        raise RuntimeError("script failed")
    with rule_utils.connect(database.url, schema=database.schema):
        assert list(rule_utils.members("day/1")) == ["kept"]


def test_an_unmigrated_database_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(RuntimeError, match="switchboard db upgrade"), rule_utils.connect(url):
        pass
    upgrade(url)
    with rule_utils.connect(url):
        assert rule_utils.count("anything") == 0
