"""The unit of work: dedup ledger, file inventory, dataset views and outbox inserts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy import exc as sa_exc

from switchboard.model import DatasetView, FileInfo
from switchboard.store.models import DatasetFile, ProcessedMessage
from switchboard.store.sql import SqlStore
from switchboard.store.unit_of_work import SqlUnitOfWork
from tests.conftest import Database, FakeClock

from .helpers import submission, wait_until_waiting_on_a_lock

BIN = FileInfo("f-1", "a_left.bin", "application/octet-stream", 100)


def test_a_message_is_recorded_once_and_then_known(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        assert not uow.already_processed("msg-1")
        assert uow.record_processed("msg-1") is True
        assert uow.record_processed("msg-1") is False

    with sql_store.unit_of_work() as uow:
        assert uow.already_processed("msg-1")
        assert uow.record_processed("msg-1") is False


def test_a_failed_block_rolls_back_everything_it_wrote(sql_store: SqlStore) -> None:
    with pytest.raises(RuntimeError, match="rule blew up"), sql_store.unit_of_work() as uow:
        uow.record_processed("msg-1")
        uow.add_file("ds-1", BIN)
        uow.add_submission(submission(), {}, {})
        raise RuntimeError("rule blew up")

    with sql_store.unit_of_work() as uow:
        assert not uow.already_processed("msg-1")
        assert uow.dataset("ds-1").files == ()
    assert sql_store.due_outbox(10) == []


def test_an_unknown_dataset_is_an_empty_view(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-unknown") == DatasetView("ds-unknown", None, ())


def test_files_come_back_in_first_seen_order_even_with_a_frozen_clock(database: Database) -> None:
    store = SqlStore(database.url, schema=database.schema, clock=FakeClock())
    names = ["c.bin", "a.bin", "b.bin", "d.bin"]
    try:
        with store.unit_of_work() as uow:
            for i, name in enumerate(names[:2]):
                uow.add_file("ds-1", FileInfo(f"f-{i}", name))
        with store.unit_of_work() as uow:
            for i, name in enumerate(names[2:], start=2):
                uow.add_file("ds-1", FileInfo(f"f-{i}", name))
        with store.unit_of_work() as uow:
            assert uow.dataset("ds-1").names() == names
    finally:
        store.close()


def test_adding_the_same_file_again_keeps_the_first(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", BIN)
        uow.add_file("ds-1", FileInfo("f-2", "b_right.bin"))
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-1", "renamed.bin", "text/plain", 5))

    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-1").files == (BIN, FileInfo("f-2", "b_right.bin"))


def test_adding_a_file_again_fills_in_what_was_missing(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-1", "a.tif"))
        uow.add_file("ds-1", FileInfo("f-1", "ignored.tif", "image/tiff", 42))
        in_transaction = uow.dataset("ds-1")

    with sql_store.unit_of_work() as uow:
        committed = uow.dataset("ds-1")
    assert (
        in_transaction
        == committed
        == DatasetView("ds-1", None, (FileInfo("f-1", "a.tif", "image/tiff", 42),))
    )


def test_the_view_follows_writes_made_after_it_was_read(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-1").files == ()
        uow.add_file("ds-1", BIN)
        uow.set_dataset_name("ds-1", "stereoTop - 2017-04-27")

        assert uow.dataset("ds-1") == DatasetView("ds-1", "stereoTop - 2017-04-27", (BIN,))


def test_files_of_other_datasets_stay_out_of_the_view(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", BIN)
        uow.add_file("ds-2", FileInfo("f-9", "other.bin"))

    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-1").files == (BIN,)


def test_the_dataset_name_is_cached_and_can_change(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.set_dataset_name("ds-1", "old name")
    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-1").name == "old name"
        uow.set_dataset_name("ds-1", "new name")

    with sql_store.unit_of_work() as uow:
        assert uow.dataset("ds-1").name == "new name"


def test_a_job_id_is_queued_once(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        assert uow.add_submission(submission("job-1"), {"a": 1}, {}) is True
        assert uow.add_submission(submission("job-1"), {"a": 2}, {}) is False
    with sql_store.unit_of_work() as uow:
        assert uow.add_submission(submission("job-1"), {"a": 3}, {}) is False

    [row] = sql_store.due_outbox(10)
    assert row.body == {"a": 1}


def test_queueing_a_batch_at_once_answers_as_queueing_one_by_one(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_submission(submission("job-old"), {"n": 0}, {})

    with sql_store.unit_of_work() as uow:
        added = uow.add_submissions(
            [
                (submission("job-b"), {"n": 1}, {}),
                (submission("job-old"), {"n": 2}, {}),
                (submission("job-a"), {"n": 3}, {}),
                (submission("job-b"), {"n": 4}, {}),
            ]
        )
        again = uow.add_submissions([(submission("job-a"), {"n": 5}, {})])
        one_more = uow.add_submission(submission("job-b"), {"n": 6}, {})

    assert added == {"job-a", "job-b"}
    assert again == set()
    assert one_more is False
    bodies = {row.submission.job_id: row.body for row in sql_store.due_outbox(10)}
    assert bodies == {"job-old": {"n": 0}, "job-b": {"n": 1}, "job-a": {"n": 3}}


def test_a_batch_queued_at_once_is_rolled_back_with_its_transaction(sql_store: SqlStore) -> None:
    with pytest.raises(RuntimeError), sql_store.unit_of_work() as uow:
        uow.add_submissions([(submission("job-1"), {}, {})])
        raise RuntimeError("poison")

    with sql_store.unit_of_work() as uow:
        assert uow.add_submissions([(submission("job-1"), {}, {})]) == {"job-1"}


def test_the_session_shares_the_transaction(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.record_processed("msg-1")
        seen = uow.session.execute(select(ProcessedMessage.message_id)).scalars().all()

    assert seen == ["msg-1"]


def test_inventory_writes_are_visible_through_the_session_in_arrival_order(
    sql_store: SqlStore,
) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-b", "b.bin"))
        uow.add_file("ds-1", FileInfo("f-a", "a.bin"))
        uow.add_file("ds-1", FileInfo("f-b", "b-again.bin", "image/tiff"))
        uow.add_file("ds-2", FileInfo("f-c", "c.bin"))
        rows = uow.session.execute(
            select(DatasetFile.dataset_id, DatasetFile.file_id, DatasetFile.position)
            .where(DatasetFile.dataset_id == "ds-1")
            .order_by(DatasetFile.position)
        ).all()

    assert [tuple(r) for r in rows] == [("ds-1", "f-b", 1), ("ds-1", "f-a", 2)]


def test_positions_continue_after_the_committed_files(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-1", "one.bin"))
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-1", "one-again.bin", "image/tiff", 7))
        uow.add_file("ds-1", FileInfo("f-2", "two.bin"))
        uow.add_file("ds-1", FileInfo("f-3", "three.bin"))

    with sql_store.unit_of_work() as uow:
        rows = uow.session.execute(
            select(DatasetFile.file_id, DatasetFile.position, DatasetFile.mime_type).order_by(
                DatasetFile.position
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("f-1", 1, "image/tiff"),
        ("f-2", 2, ""),
        ("f-3", 3, ""),
    ]


def test_known_files_between_new_ones_leave_no_gap_in_any_datasets_positions(
    sql_store: SqlStore,
) -> None:
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-1", "one.bin"))
    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-2", FileInfo("f-x", "x.bin"))
        uow.add_file("ds-1", FileInfo("f-2", "two.bin"))
        uow.add_file("ds-1", FileInfo("f-1", "one-again.bin"))
        uow.add_file("ds-2", FileInfo("f-y", "y.bin"))
        uow.add_file("ds-1", FileInfo("f-3", "three.bin"))

    with sql_store.unit_of_work() as uow:
        rows = uow.session.execute(
            select(DatasetFile.dataset_id, DatasetFile.file_id, DatasetFile.position).order_by(
                DatasetFile.dataset_id, DatasetFile.position
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("ds-1", "f-1", 1),
        ("ds-1", "f-2", 2),
        ("ds-1", "f-3", 3),
        ("ds-2", "f-x", 1),
        ("ds-2", "f-y", 2),
    ]


def test_a_view_read_after_unread_writes_includes_them(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.set_dataset_name("ds-1", "old name")
        uow.add_file("ds-1", FileInfo("f-1", "one.bin"))

    with sql_store.unit_of_work() as uow:
        uow.add_file("ds-1", FileInfo("f-2", "two.bin"))
        uow.add_file("ds-1", FileInfo("f-1", "ignored.bin", "image/tiff", 3))
        uow.set_dataset_name("ds-1", "new name")
        in_transaction = uow.dataset("ds-1")

    with sql_store.unit_of_work() as uow:
        committed = uow.dataset("ds-1")
    expected_files = (FileInfo("f-1", "one.bin", "image/tiff", 3), FileInfo("f-2", "two.bin"))
    assert in_transaction == committed == DatasetView("ds-1", "new name", expected_files)


def test_prefetched_answers_are_the_ones_asked_one_by_one(sql_store: SqlStore) -> None:
    with sql_store.unit_of_work() as uow:
        uow.record_processed("msg-old")
        uow.set_dataset_name("ds-1", "stereoTop - 1")
        uow.add_file("ds-1", BIN)

    with sql_store.unit_of_work() as uow:
        uow.prefetch(["msg-old", "msg-new"], ["ds-1", "ds-2", ""])
        prefetched = (
            uow.already_processed("msg-old"),
            uow.record_processed("msg-old"),
            uow.record_processed("msg-new"),
            uow.dataset("ds-1"),
            uow.dataset("ds-2"),
        )

    assert prefetched == (
        True,
        False,
        True,
        DatasetView("ds-1", "stereoTop - 1", (BIN,)),
        DatasetView("ds-2", None, ()),
    )
    with sql_store.unit_of_work() as uow:
        assert uow.already_processed("msg-new")


def test_recording_a_batch_at_once_answers_as_recording_one_by_one(
    sql_store: SqlStore,
) -> None:
    with sql_store.unit_of_work() as uow:
        uow.record_processed("msg-old")

    with sql_store.unit_of_work() as uow:
        new = uow.record_processed_many(["msg-b", "msg-old", "msg-a", "msg-b"])
        answers = [uow.record_processed(m) for m in ("msg-a", "msg-b", "msg-old", "msg-b")]
        again = uow.record_processed_many(["msg-a", "msg-c"])

    assert new == {"msg-a", "msg-b"}
    assert answers == [True, True, False, False]
    assert again == {"msg-c"}
    with sql_store.unit_of_work() as uow:
        assert all(uow.already_processed(m) for m in ("msg-a", "msg-b", "msg-c"))


def test_a_batch_recorded_at_once_is_rolled_back_with_its_transaction(
    sql_store: SqlStore,
) -> None:
    with pytest.raises(RuntimeError), sql_store.unit_of_work() as uow:
        uow.record_processed_many(["msg-1", "msg-2"])
        raise RuntimeError("poison")

    with sql_store.unit_of_work() as uow:
        assert uow.record_processed_many(["msg-1", "msg-2"]) == {"msg-1", "msg-2"}


def test_a_prefetched_batch_costs_a_fixed_number_of_reads(sql_store: SqlStore) -> None:
    """The round trips a batch of 30 events over 3 datasets makes, by kind of statement."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(sql_store.engine, "before_cursor_execute", count)
    try:
        with sql_store.unit_of_work() as uow:
            message_ids = [f"msg-{k}" for k in range(30)]
            uow.prefetch(message_ids, ["ds-0", "ds-1", "ds-2"])
            for k, message_id in enumerate(message_ids):
                uow.record_processed(message_id)
                uow.set_dataset_name(f"ds-{k % 3}", f"name {k % 3}")
                uow.add_file(f"ds-{k % 3}", FileInfo(f"f-{k}", f"{k}.bin"))
                uow.dataset(f"ds-{k % 3}")
    finally:
        event.remove(sql_store.engine, "before_cursor_execute", count)

    selects = statements.count("SELECT")
    writes = statements.count("INSERT") + statements.count("WITH")  # WITH: PostgreSQL's files
    assert selects <= 4  # prefetch: ledger, names, files (plus SQLite's connection probe)
    assert writes == 30 + 2  # one per ledger row, then one statement per inventory table


def test_errors_that_are_not_connection_failures_are_not_store_errors(
    sql_store: SqlStore,
) -> None:
    """A bug must surface as itself, not as 'database down, retry the batch forever'."""
    row = {"message_id": "msg-1", "processed_at": FakeClock()()}
    with pytest.raises(sa_exc.IntegrityError), sql_store.unit_of_work() as uow:
        uow.session.execute(insert(ProcessedMessage.__table__).values(**row))
        uow.session.execute(insert(ProcessedMessage.__table__).values(**row))


def _race(store: SqlStore, write: Callable[[SqlUnitOfWork], bool]) -> list[bool]:
    """Run `write` in two transactions; the second starts while the first is uncommitted."""
    second_result: list[bool] = []
    second_error: list[BaseException] = []
    second_pid: list[int] = []
    pid_known = threading.Event()

    def second() -> None:
        try:
            with store.unit_of_work() as uow:
                second_pid.append(uow.session.execute(text("SELECT pg_backend_pid()")).scalar())
                pid_known.set()
                second_result.append(write(uow))
        except BaseException as error:
            second_error.append(error)
            pid_known.set()

    with store.unit_of_work() as uow:
        first_result = write(uow)
        thread = threading.Thread(target=second)
        thread.start()
        assert pid_known.wait(60)
        assert not second_error, second_error
        wait_until_waiting_on_a_lock(second_pid[0])
    thread.join(60)
    assert not second_error, second_error
    return [first_result, *second_result]


def _prefetch(uow: SqlUnitOfWork, number: int) -> None:
    uow.prefetch(dataset_ids=["ds-1"])


def _read_ahead(uow: SqlUnitOfWork, number: int) -> None:
    """The batch's start in one pipeline (ledger, locks, reads): the reads still run after
    the locks are held."""
    uow.read_ahead([f"msg-{number}"], ["ds-1"])


@pytest.mark.postgres
@pytest.mark.parametrize("start", [_prefetch, _read_ahead])
def test_a_concurrent_transaction_reading_the_same_dataset_waits_and_sees_the_first_ones_file(
    pg_url: str, pg_schema: str, start: Callable[[SqlUnitOfWork, int], None]
) -> None:
    """Two replicas adding the first and the second BIN file of one dataset at once: the
    second waits for the first to commit, so its view has both files (a "2 BIN files" rule
    fires) instead of each seeing only its own."""
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    numbers = iter(range(1, 3))

    def add_a_file_and_read_the_view(uow: SqlUnitOfWork) -> list[str]:
        number = next(numbers)
        start(uow, number)
        uow.add_file("ds-1", FileInfo(f"f-{number}", "a.bin"))
        return [f.id for f in uow.dataset("ds-1").files]

    try:
        first, second = _race(store, add_a_file_and_read_the_view)  # type: ignore[arg-type]
    finally:
        store.close()

    assert first == ["f-1"]
    assert second == ["f-1", "f-2"]


@pytest.mark.postgres
def test_transactions_on_different_datasets_do_not_wait_for_each_other(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        with store.unit_of_work() as first:
            first.prefetch(dataset_ids=["ds-1"])
            first.add_file("ds-1", FileInfo("f-1", "a.bin"))
            done = threading.Event()

            def other_dataset() -> None:
                with store.unit_of_work() as second:
                    second.prefetch(dataset_ids=["ds-2"])
                    second.add_file("ds-2", FileInfo("f-2", "b.bin"))
                done.set()

            thread = threading.Thread(target=other_dataset)
            thread.start()
            assert done.wait(30)  # committed while the first transaction is still open
        thread.join(30)
    finally:
        store.close()


@pytest.mark.postgres
def test_concurrent_transactions_queue_a_job_once(pg_url: str, pg_schema: str) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        results = _race(store, lambda uow: uow.add_submission(submission("job-1"), {}, {}))
    finally:
        store.close()

    assert results == [True, False]


@pytest.mark.postgres
def test_concurrent_transactions_queueing_a_batch_at_once_queue_each_job_once(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    batch = [(submission("job-1"), {}, {}), (submission("job-2"), {}, {})]
    try:
        results = _race(store, lambda uow: uow.add_submissions(batch))
    finally:
        store.close()

    assert results == [{"job-1", "job-2"}, set()]


@pytest.mark.postgres
def test_concurrent_transactions_record_a_message_once(pg_url: str, pg_schema: str) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        results = _race(store, lambda uow: uow.record_processed("msg-1"))
    finally:
        store.close()

    assert results == [True, False]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "read",
    [
        lambda uow: uow.prefetch(["msg-1"], ["ds-1"]),
        lambda uow: uow.read_ahead(["msg-1"], []),  # the ledger insert in the batch's pipeline
    ],
    ids=["prefetch", "read_ahead"],
)
def test_a_prefetch_does_not_change_how_concurrent_transactions_record_a_message(
    pg_url: str, pg_schema: str, read: Callable[[SqlUnitOfWork], None]
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)

    def prefetch_then_record(uow: SqlUnitOfWork) -> bool:
        read(uow)
        return uow.record_processed("msg-1")

    try:
        results = _race(store, prefetch_then_record)
    finally:
        store.close()

    assert results == [True, False]


@pytest.mark.postgres
def test_concurrent_transactions_recording_a_batch_at_once_record_each_message_once(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        results = _race(store, lambda uow: uow.record_processed_many(["msg-2", "msg-1"]))
    finally:
        store.close()

    assert results == [{"msg-1", "msg-2"}, set()]


@pytest.fixture
def pg_store(pg_url: str, pg_schema: str) -> Iterator[SqlStore]:
    """A migrated SqlStore on PostgreSQL only (the pipelined round trips are its own)."""
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    yield store
    store.close()


@pytest.mark.postgres
def test_work_handed_to_while_waiting_runs_once_during_the_batchs_start(
    pg_store: SqlStore,
) -> None:
    ran: list[str] = []
    with pg_store.unit_of_work() as uow:
        uow.while_waiting(lambda: ran.append("early work"))
        uow.read_ahead(["msg-1"], ["ds-1"])
        assert ran == ["early work"]
        uow.read_ahead(["msg-2"], ["ds-2"])
    assert ran == ["early work"]


@pytest.mark.postgres
def test_work_handed_to_while_waiting_runs_during_an_outbox_insert(pg_store: SqlStore) -> None:
    ran: list[str] = []
    with pg_store.unit_of_work() as uow:
        uow.add_file("ds-1", BIN)
        uow.while_waiting(lambda: ran.append("early work"))
        added = uow.add_submissions([(submission("job-1"), {"id": "f-1"}, {})])
        assert (added, ran) == ({"job-1"}, ["early work"])
    with pg_store.unit_of_work() as uow:
        assert [f.id for f in uow.dataset("ds-1").files] == ["f-1"]  # went in alongside


def test_work_handed_to_while_waiting_on_sqlite_is_dropped_not_run(tmp_path) -> None:
    """SQLite has no pipelined round trip to fill: the work (a saving only) never runs."""
    from switchboard.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)
    store = SqlStore(url)
    ran: list[str] = []
    try:
        with store.unit_of_work() as uow:
            uow.while_waiting(lambda: ran.append("early work"))
            uow.read_ahead(["msg-1"], ["ds-1"])
            uow.add_submissions([(submission("job-1"), {"id": "f-1"}, {})])
        assert ran == []
    finally:
        store.close()
