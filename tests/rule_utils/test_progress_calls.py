"""rule_utils calls on the real Progress (SQLite and PostgreSQL) and on the in-memory fake alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import rule_utils
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import InMemoryProgress
from tests.conftest import Database

Binder = Callable[[], AbstractContextManager[Any]]


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "in-memory"]
)
def transaction(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Binder]:
    """Opens a bound transaction; each `with transaction():` commits before the next opens."""
    if request.param == "in-memory":
        progress = InMemoryProgress()

        @contextmanager
        def fake() -> Iterator[Any]:
            with rule_utils.bound(progress):
                yield progress

        yield fake
        return
    if request.param == "sqlite":
        database = Database("sqlite", f"sqlite:///{tmp_path / 'switchboard.db'}")
    else:
        schema = request.getfixturevalue("pg_schema")
        database = Database("postgresql", request.getfixturevalue("pg_url"), schema)
    upgrade(database.url, database.schema)
    store = SqlStore(database.url, schema=database.schema)

    @contextmanager
    def real() -> Iterator[Any]:
        with store.unit_of_work() as uow, rule_utils.bound(uow.progress) as progress:
            yield progress

    yield real
    store.close()


def test_members_are_distinct_sorted_and_keep_their_data(transaction: Binder) -> None:
    with transaction():
        assert rule_utils.add_member("mosaic", "day/1", "f2", {"path": "/b"}, extractor="x")
        assert rule_utils.add_member("mosaic", "day/1", "f1", {"path": "/a"})
        assert not rule_utils.add_member("mosaic", "day/1", "f1", {"path": "/a"})
    with transaction():
        assert rule_utils.members("day/1") == {"f1": {"path": "/a"}, "f2": {"path": "/b"}}
        assert rule_utils.count("day/1") == 2
        assert rule_utils.count("day/1", rule="other") == 0
        assert rule_utils.count("day/unknown") == 0


def test_counts_with_prefix_cover_every_key_sharing_it(transaction: Binder) -> None:
    with transaction():
        rule_utils.add_member("height", "PLYs -- 2017-05-01 (scan a)", "f1")
        rule_utils.add_member("height", "PLYs -- 2017-05-01 (scan a)", "f2")
        rule_utils.add_member("height", "PLYs -- 2017-05-01 (scan b)", "f3")
        rule_utils.add_member("height", "PLYs -- 2017-05-02 (scan a)", "f4")
    with transaction():
        assert rule_utils.counts_with_prefix("PLYs -- 2017-05-01") == {
            "PLYs -- 2017-05-01 (scan a)": 2,
            "PLYs -- 2017-05-01 (scan b)": 1,
        }


def test_a_generation_fires_once_and_a_reset_opens_the_next(transaction: Binder) -> None:
    with transaction():
        assert rule_utils.generation("mosaic", "day/1") == 0
        rule_utils.add_member("mosaic", "day/1", "f1")
        first = rule_utils.generation("mosaic", "day/1")
        assert first == 1
        assert rule_utils.mark_fired("mosaic", "day/1", first, job_id="job-1")
    with transaction():
        assert not rule_utils.mark_fired("mosaic", "day/1", first)
        assert rule_utils.reset("mosaic", "day/1") == first + 1
        assert rule_utils.count("day/1") == 0
        rule_utils.add_member("mosaic", "day/1", "f9")
        assert list(rule_utils.members("day/1")) == ["f9"]
        assert list(rule_utils.members("day/1", generation=first)) == ["f1"]
        assert rule_utils.mark_fired("mosaic", "day/1", first + 1)


def test_the_legacy_calls_answer_as_the_rulechecker_did(transaction: Binder) -> None:
    key = "Full Field -- RGB GeoTIFFs - 2017-05-01"
    with transaction():
        assert rule_utils.retrieveProgressFromDB(key) == {}
        for extractor in ("terra.geotiff.fieldmosaic", "terra.geotiff.other"):
            rule_utils.submitProgressToDB("fullField", extractor, key, "id-2", "/tifs/b_left.tif")
        rule_utils.submitProgressToDB("fullField", "x", key, "id-1", "/tifs/a_left.tif")
        rule_utils.submitProgressToDB("fullField", "x", key + " (scan 2)", "id-3", "/c.tif")
    with transaction():
        assert rule_utils.retrieveProgressFromDB(key) == {
            "ids": {"id-1": "/tifs/a_left.tif", "id-2": "/tifs/b_left.tif"}
        }
        counts = rule_utils.retrieveQueryCountsFromDB(key)
        assert counts["total"] == 3
        assert counts["counts"] == {key: 2, key + " (scan 2)": 1}
        assert rule_utils.retrieveQueryCountsFromDB("nothing like it") == {"total": 0, "counts": {}}


def test_a_2017_style_list_of_ids_records_each_of_them(transaction: Binder) -> None:
    with transaction():
        rule_utils.submitProgressToDB("fullField", "x", "day", ["a", "b"])
        rule_utils.submitProgressToDB("fullField", "x", "day", ["b", "c"])
    with transaction():
        found = rule_utils.retrieveProgressFromDB("day")
    assert found == {"ids": {"a": None, "b": None, "c": None}}
