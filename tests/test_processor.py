"""The processor's batch commit: the ledger read ahead for the batch answers as one by one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.engine import Engine
from switchboard.model import submit
from switchboard.outgoing import extractor_message
from switchboard.processor import BatchResult, Processor
from switchboard.rules import RuleSet, load_rules, rule
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import DATASET, RULES_YAML, expected_job, record

EXTRACTOR = "test.ext"
POISON = "msg-00000002"
STILL_RUNNING = "not run: its call on an earlier event timed out and is still running"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    made = Engine(load_rules([str(rules)]))
    yield made
    made.close()


def deliveries(*numbers: int) -> list[ListDelivery]:
    return [ListDelivery.from_record(tag, record(n)) for tag, n in enumerate(numbers, start=1)]


def poisoned_builder(event, submission):
    if event.message_id == POISON:
        raise ValueError("cannot build this one")
    return extractor_message(event, submission)


def jobs(result: BatchResult) -> list[str]:
    return sorted(s.job_id for s in result.submissions)


def expected(*numbers: int) -> list[str]:
    return sorted(expected_job(n, EXTRACTOR) for n in numbers)


def test_a_duplicate_inside_one_batch_is_counted_once_and_submits_once(
    sql_store: SqlStore, engine: Engine
) -> None:
    result = Processor(engine, sql_store, extractor_message).process(deliveries(1, 2, 1, 1))
    assert len(result.committed) == 4
    assert result.duplicates == 2
    assert jobs(result) == expected(1, 2)


def test_a_redelivered_batch_is_all_duplicates(sql_store: SqlStore, engine: Engine) -> None:
    processor = Processor(engine, sql_store, extractor_message)
    processor.process(deliveries(1, 2, 3))
    again = processor.process(deliveries(3, 4, 1))
    assert again.duplicates == 2
    assert jobs(again) == expected(4)
    with sql_store.unit_of_work() as uow:
        assert all(uow.already_processed(f"msg-{n:08d}") for n in (1, 2, 3, 4))


def test_a_poison_event_is_isolated_and_the_rest_recorded_once(
    sql_store: SqlStore, engine: Engine
) -> None:
    processor = Processor(engine, sql_store, poisoned_builder)
    result = processor.process(deliveries(0, 1, 2, 3, 1, 4, 5, 0))
    ((poisoned, reason),) = result.poison
    assert poisoned.delivery_tag == 3
    assert "cannot build this one" in reason
    assert sorted(d.delivery_tag for d in result.committed) == [1, 2, 4, 5, 6, 7, 8]
    assert result.duplicates == 2
    assert jobs(result) == expected(0, 1, 3, 4, 5)
    with sql_store.unit_of_work() as uow:
        assert not uow.already_processed(POISON)
        assert len(uow.dataset(DATASET).files) == 5  # the poison event's file rolled back


def test_a_poison_event_once_fixed_is_processed_and_the_others_stay_done(
    sql_store: SqlStore, engine: Engine
) -> None:
    Processor(engine, sql_store, poisoned_builder).process(deliveries(1, 2, 3))
    fixed = Processor(engine, sql_store, extractor_message).process(deliveries(1, 2, 3))
    assert fixed.duplicates == 2
    assert jobs(fixed) == expected(2)


def _dataset_counter(seen: list[int]) -> Engine:
    """An engine whose one Python rule submits the dataset and notes how many files it saw."""

    @rule
    def count_files(event, dataset):
        seen.append(len(dataset.files))
        return submit("test.count", resource="dataset", parameters={"n": len(dataset.files)})

    return Engine(RuleSet([count_files]))


def test_a_dataset_job_asked_for_by_every_event_of_a_batch_is_queued_once(
    sql_store: SqlStore,
) -> None:
    seen: list[int] = []
    engine = _dataset_counter(seen)
    try:
        result = Processor(engine, sql_store, extractor_message).process(deliveries(1, 2, 3))
    finally:
        engine.close()
    assert seen == [1, 2, 3]  # each event matched with its own file and the earlier ones
    (queued,) = result.submissions
    assert queued.parameters == {"n": 1}
    [row] = sql_store.due_outbox(10)
    assert row.submission.job_id == queued.job_id


def test_events_a_stuck_python_rule_could_not_evaluate_are_each_its_rule_error(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    release = threading.Event()

    @rule
    def sleeps(event, dataset):
        release.wait(60)

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    engine = Engine(RuleSet([*load_rules([str(rules)]), sleeps]), rule_timeout_s=0.3)
    processor = Processor(engine, sql_store, extractor_message)
    try:
        first = processor.process(deliveries(1, 2))
        later = processor.process([ListDelivery.from_record(3, record(3))])
    finally:
        release.set()
        engine.close()
    assert first.rule_errors == [
        ("sleeps", "msg-00000001", "timed out after 0.3 s"),
        ("sleeps", "msg-00000002", STILL_RUNNING),
    ]
    assert later.rule_errors == [("sleeps", "msg-00000003", STILL_RUNNING)]
    assert jobs(first) == expected(1, 2)  # the YAML rule still decided every event
    assert jobs(later) == expected(3)
    assert len(first.committed) + len(later.committed) == 3
