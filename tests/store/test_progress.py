"""Collection progress: distinct members, counts, generations and firing once, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from switchboard.store.progress import Progress
from switchboard.store.sql import SqlStore
from tests.conftest import Database, FakeClock


@pytest.fixture
def store(database: Database) -> Iterator[SqlStore]:
    store = SqlStore(database.url, schema=database.schema, clock=FakeClock())
    yield store
    store.close()


def test_a_member_added_twice_is_counted_once(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.progress.add_member("mosaic", "day/1", "f1", {"path": "/a/f1"})
        assert not uow.progress.add_member("mosaic", "day/1", "f1", {"path": "/a/f1"})
    with store.unit_of_work() as uow:
        assert not uow.progress.add_member("mosaic", "day/1", "f1")
        assert uow.progress.count("day/1", rule="mosaic") == 1
        assert uow.progress.members("day/1") == {"f1": {"path": "/a/f1"}}


def test_members_come_back_sorted_with_their_data(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        for member in ("c", "a", "b"):
            uow.progress.add_member("mosaic", "k", member, {"path": f"/{member}"}, extractor="x")
    with store.unit_of_work() as uow:
        found = uow.progress.members("k", rule="mosaic")
    assert list(found) == ["a", "b", "c"]
    assert found["b"] == {"path": "/b"}


def test_a_key_used_by_two_rules_counts_each_member_once(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.progress.add_member("left", "day", "f1")
        uow.progress.add_member("right", "day", "f1")
        uow.progress.add_member("right", "day", "f2")
    with store.unit_of_work() as uow:
        assert uow.progress.count("day") == 2
        assert uow.progress.count("day", rule="left") == 1
        assert list(uow.progress.members("day")) == ["f1", "f2"]


def test_counts_with_prefix_cover_only_keys_starting_with_it(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.progress.add_member("h", "Plant Height -- 2017-05-01 (a)", "f1")
        uow.progress.add_member("h", "Plant Height -- 2017-05-01 (b)", "f2")
        uow.progress.add_member("h", "Plant Height -- 2017-05-01 (b)", "f3")
        uow.progress.add_member("h", "Plant Height -- 2017-05-02 (a)", "f4")
        uow.progress.add_member("h", "100%_done", "f5")
    with store.unit_of_work() as uow:
        counts = uow.progress.counts_with_prefix("Plant Height -- 2017-05-01")
        assert counts == {
            "Plant Height -- 2017-05-01 (a)": 1,
            "Plant Height -- 2017-05-01 (b)": 2,
        }
        assert uow.progress.counts_with_prefix("100%") == {"100%_done": 1}
        assert uow.progress.counts_with_prefix("1_0") == {}


def test_an_unknown_collection_is_generation_zero_and_empty(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.progress.generation("mosaic", "nothing") == 0
        assert uow.progress.count("nothing") == 0
        assert uow.progress.members("nothing") == {}


def test_a_generation_fires_only_once(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.progress.add_member("mosaic", "k", "f1")
        generation = uow.progress.generation("mosaic", "k")
        assert uow.progress.mark_fired("mosaic", "k", generation, manifest_id="m", job_id="j")
    with store.unit_of_work() as uow:
        assert not uow.progress.mark_fired("mosaic", "k", generation)
        assert uow.progress.collection("mosaic", "k").state == "fired"


def test_reset_opens_the_next_generation_empty(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.progress.add_member("mosaic", "k", "f1")
        uow.progress.mark_fired("mosaic", "k", 1)
        assert uow.progress.reset("mosaic", "k") == 2
        assert uow.progress.count("k") == 0
        assert uow.progress.add_member("mosaic", "k", "f1")
        assert uow.progress.members("k", generation=1) == {"f1": None}
        assert uow.progress.mark_fired("mosaic", "k", 2)
        assert uow.progress.reset("other", "never-seen") == 1


def test_late_members_are_ignored_or_open_the_next_generation_as_asked(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        progress = uow.progress
        progress.add("mosaic", "k", "f1")
        progress.mark_fired("mosaic", "k", 1)
        ignored = progress.add("mosaic", "k", "f2", after_fire="ignore")
        assert (ignored.added, ignored.generation, progress.count("k")) == (False, 1, 1)
        reopened = progress.add("mosaic", "k", "f2", after_fire="next_generation")
        assert (reopened.added, reopened.generation, reopened.reopened) == (True, 2, True)
        assert progress.members("k") == {"f2": None}


def test_a_rolled_back_transaction_leaves_no_progress(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.progress.add_member("mosaic", "k", "f1")
        raise RuntimeError("crash before commit")
    with store.unit_of_work() as uow:
        assert uow.progress.count("k") == 0


def test_progress_works_on_a_plain_connection(store: SqlStore) -> None:
    with store.engine.begin() as connection:
        progress = Progress(connection)
        assert progress.add_member("script", "k", "f1", {"path": "/f1"})
    with store.engine.begin() as connection:
        assert Progress(connection).members("k") == {"f1": {"path": "/f1"}}


@pytest.mark.postgres
def test_concurrent_transactions_count_and_fire_exactly_once(pg_url: str, pg_schema: str) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    fired: list[int] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(40):
                with store.unit_of_work() as uow:
                    member = f"f{(i + offset) % 50}"  # overlapping members across workers
                    added = uow.progress.add("mosaic", "k", member)
                    if added.added and added.count >= 50:
                        fired.append(int(uow.progress.mark_fired("mosaic", "k", 1)))
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n * 10,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with store.unit_of_work() as uow:
            assert uow.progress.count("k") == len(uow.progress.members("k"))
            assert uow.progress.count("k") == 50
    finally:
        store.close()
    assert errors == []
    assert sum(fired) == 1
