"""The quiet_for sweeper on SQLite and PostgreSQL: big triggers, and one bad collection alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from switchboard.collections.sweeper import Sweeper
from switchboard.processor import Processor
from switchboard.store.collection_tables import CollectionRow
from switchboard.testing import ListDelivery
from tests.collections.helpers import close, make_processor, mosaic_rule
from tests.integration.clowder_events import record

RULES = mosaic_rule("{quiet_for: 30s}")
BIG = "ü" * 300_000  # 600 KB in UTF-8; 1.8 MB once escaped as ASCII (`\\u00fc`)
GOOD, BIG_DS, BAD = (f"{n:024x}" for n in (0xA1, 0xA2, 0xA3))


@pytest.fixture
def processor(store, tmp_path) -> Iterator[Processor]:
    made = make_processor(store, tmp_path, RULES)  # intake limit: the 1 MiB default
    yield made
    close(made)


def delivery(tag: int, n: int, dataset: str, notes: str = "") -> ListDelivery:
    """File `n` of `dataset` as the bytes Clowder sends (UTF-8, not ASCII-escaped)."""
    rec = record(n, dataset=dataset)
    if notes:
        rec["body"]["notes"] = notes
    rec["body"] = json.dumps(rec["body"], ensure_ascii=False)
    return ListDelivery.from_record(tag, rec)


def fed(processor: Processor, *deliveries: ListDelivery) -> None:
    result = processor.process(list(deliveries))
    assert len(result.committed) == len(deliveries), result


def deadline_of(store, dataset: str):
    with store.unit_of_work() as uow:
        state = uow.progress.collection("mosaic", f"mosaic/{dataset}")
    assert state is not None
    return state.quiet_deadline


def test_a_quiet_for_trigger_with_600_kb_of_non_ascii_text_fires_with_its_body_intact(
    store, processor, clock
):
    big = delivery(1, 1, BIG_DS, notes=BIG)
    escaped = json.dumps(BIG).encode()
    assert 600_000 <= len(big.body) < processor.max_event_bytes < len(escaped)
    fed(processor, big, delivery(2, 2, GOOD))
    clock.advance(31)

    fired = Sweeper(processor).sweep()

    assert sorted(f.key for f in fired) == sorted([f"mosaic/{BIG_DS}", f"mosaic/{GOOD}"])
    [row] = [r for r in store.recent_submissions(10) if r.submission.resource_id == BIG_DS]
    assert row.body["notes"] == BIG
    assert deadline_of(store, BIG_DS) is None


def test_one_collection_that_cannot_fire_is_logged_and_cleared_and_the_others_still_fire(
    store, processor, clock, caplog
):
    fed(processor, delivery(1, 1, BAD), delivery(2, 2, GOOD))
    c = CollectionRow.__table__
    with store.unit_of_work() as uow:  # e.g. a trigger a bug stored, or one edited by hand
        uow.session.execute(
            update(c).where(c.c.key == f"mosaic/{BAD}").values(trigger={"raw": "{not json"})
        )
    clock.advance(31)
    sweeper = Sweeper(processor)

    with caplog.at_level(logging.ERROR, logger="switchboard.collections.sweeper"):
        fired = sweeper.sweep()

    assert [f.key for f in fired] == [f"mosaic/{GOOD}"]
    assert [(rule, key) for rule, key, _ in sweeper.failures] == [("mosaic", f"mosaic/{BAD}")]
    assert sweeper.failures[0][2].startswith("MalformedEvent: ")
    assert f"mosaic/{BAD}" in caplog.text and "could not fire" in caplog.text
    assert deadline_of(store, BAD) is None  # not retried every second
    assert store.counts_by_status()["pending"] == 1
    clock.advance(3600)
    assert sweeper.sweep() == [] and sweeper.failures == []
    fed(processor, delivery(3, 3, BAD))  # its next member re-arms it with a good trigger
    clock.advance(31)
    assert [f.key for f in sweeper.sweep()] == [f"mosaic/{BAD}"]


def test_a_trigger_armed_before_raw_bodies_were_stored_still_fires_without_the_size_limit(
    store, processor, clock
):
    fed(processor, delivery(1, 1, BIG_DS))
    c = CollectionRow.__table__
    with store.unit_of_work() as uow:
        trigger = dict(uow.progress.collection("mosaic", f"mosaic/{BIG_DS}").trigger)
        body = json.loads(trigger.pop("raw"))
        body["notes"] = BIG
        trigger["body"] = body  # the shape older versions stored
        uow.session.execute(update(c).where(c.c.key == f"mosaic/{BIG_DS}").values(trigger=trigger))
    clock.advance(31)

    [firing] = Sweeper(processor).sweep()

    assert firing.key == f"mosaic/{BIG_DS}"
    [row] = store.recent_submissions(10)
    assert row.body["notes"] == BIG


def test_a_collection_failing_halfway_through_firing_is_rolled_back_to_its_savepoint(
    store, processor, clock
):
    fed(processor, delivery(1, 1, BAD), delivery(2, 2, GOOD))
    build = processor.message_builder

    def failing_for_bad(event, submission):  # fails after mark_fired and the manifest
        if submission.resource_id == BAD:
            raise ValueError("cannot build this one")
        return build(event, submission)

    processor.message_builder = failing_for_bad
    clock.advance(31)
    sweeper = Sweeper(processor)

    assert [f.key for f in sweeper.sweep()] == [f"mosaic/{GOOD}"]

    assert sweeper.failures == [("mosaic", f"mosaic/{BAD}", "ValueError: cannot build this one")]
    with store.unit_of_work() as uow:
        bad = uow.progress.collection("mosaic", f"mosaic/{BAD}")
        good = uow.progress.collection("mosaic", f"mosaic/{GOOD}")
    assert (bad.state, bad.quiet_deadline) == ("open", None)  # its firing was undone
    assert good.state == "fired"
    assert [r.submission.resource_id for r in store.recent_submissions(10)] == [GOOD]
