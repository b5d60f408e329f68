"""The processor's batch commit: the ledger read ahead for the batch answers as one by one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import BatchResult, Processor
from switchboard.rules import load_rules
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import DATASET, RULES_YAML, expected_job, record

EXTRACTOR = "test.ext"
POISON = "msg-00000002"


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
