"""Redelivered messages are counted, processed alone and dead-lettered after too many crashes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.engine import Engine
from switchboard.failures import delivery_fingerprint
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import load_rules
from switchboard.store.intake_attempts import SqlCrashGuard
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import RULES_YAML, expected_job, record

EXTRACTOR = "test.ext"


class CountingEngine:
    """The real engine, noting how many events each evaluation call got."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sizes: list[int] = []

    def evaluate_many(self, pairs: list[Any], *, unmatched: bool = True) -> Any:
        self.sizes.append(len(pairs))
        return self.engine.evaluate_many(pairs, unmatched=unmatched)

    def evaluate(self, event: Any, dataset: Any) -> Any:
        return self.engine.evaluate(event, dataset)

    def submissions(self, evaluation: Any) -> Any:
        return list(evaluation.submissions)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[CountingEngine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    made = Engine(load_rules([str(rules)]))
    yield CountingEngine(made)
    made.close()


def deliveries(*numbers: int, redelivered: bool = True) -> list[ListDelivery]:
    made = [ListDelivery.from_record(tag, record(n)) for tag, n in enumerate(numbers, start=1)]
    return [dataclasses.replace(d, redelivered=redelivered) for d in made]


def poisoned_builder(event, submission):
    if event.message_id == "msg-00000002":
        raise ValueError("cannot build this one")
    return extractor_message(event, submission)


def test_redelivered_messages_are_processed_one_at_a_time_and_their_counters_go_with_the_commit(
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    batch = deliveries(1, 2, 3)
    result = Processor(engine, sql_store, extractor_message, crash_guard=guard).process(batch)
    assert engine.sizes == [1, 1, 1]
    assert [d.delivery_tag for d in result.committed] == [1, 2, 3]
    assert sorted(s.job_id for s in result.submissions) == sorted(
        expected_job(n, EXTRACTOR) for n in (1, 2, 3)
    )
    assert [guard.attempts(delivery_fingerprint(d)) for d in batch] == [0, 0, 0]


def test_first_deliveries_are_processed_together_without_counting(
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    batch = deliveries(1, 2, 3, redelivered=False)
    Processor(engine, sql_store, extractor_message, crash_guard=guard).process(batch)
    assert engine.sizes == [3]


def test_a_redelivered_message_at_the_crash_limit_is_dead_lettered_and_the_rest_of_its_batch_commits(  # noqa: E501 (the behaviour is the name)
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    batch = deliveries(1, 2, 3)
    poison = delivery_fingerprint(batch[1])
    for _ in range(2):  # two attempts that started and never finished: they crashed us
        guard.record_attempt(poison)
    result = Processor(engine, sql_store, extractor_message, crash_guard=guard).process(batch)
    ((dead, reason),) = result.poison
    assert (dead.delivery_tag, reason) == (2, "crashed the daemon 3 times")
    assert [d.delivery_tag for d in result.committed] == [1, 3]
    assert guard.attempts(poison) == 0
    with sql_store.unit_of_work() as uow:
        assert not uow.already_processed("msg-00000002")


def test_a_redelivered_message_below_the_limit_is_processed_again(
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    (delivery,) = deliveries(1)
    guard.record_attempt(delivery_fingerprint(delivery))
    result = Processor(engine, sql_store, extractor_message, crash_guard=guard).process([delivery])
    assert result.committed == [delivery] and not result.poison


def test_a_redelivered_message_that_raises_is_poison_and_leaves_no_counter(
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    batch = deliveries(1, 2)
    result = Processor(engine, sql_store, poisoned_builder, crash_guard=guard).process(batch)
    ((dead, reason),) = result.poison
    assert dead.delivery_tag == 2 and "cannot build this one" in reason
    assert guard.attempts(delivery_fingerprint(batch[1])) == 0


def test_a_redelivered_malformed_message_is_dead_lettered_and_leaves_no_counter(
    sql_store: SqlStore, engine: CountingEngine
) -> None:
    guard = SqlCrashGuard(sql_store, max_crashes=3)
    broken = ListDelivery(1, b"not json", redelivered=True)
    result = Processor(engine, sql_store, extractor_message, crash_guard=guard).process([broken])
    ((dead, reason),) = result.malformed
    assert dead is broken and "not valid JSON" in reason
    assert guard.attempts(delivery_fingerprint(broken)) == 0
