"""Retention of the archive: by age and by rows, in batches; the ledger and outbox row cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.provenance.archive import EventArchive, archive_table, memberships
from switchboard.provenance.pruning import prune_provenance
from switchboard.retention import Pruner
from switchboard.rules import load_rules
from switchboard.store.sql import SqlStore
from switchboard.store.statements import messages, submissions
from switchboard.testing import ListDelivery
from tests.conftest import FakeClock
from tests.integration.clowder_events import RULES_YAML, record

COLLECT = """\
- name: tifs-of-the-day
  when: {file.name: {suffix: ".tif"}}
  collect: {key: "day", member: "{file.id}", until: {count: 100}}
  submit: {extractor: mosaic}
"""


@pytest.fixture
def processor(store: SqlStore, tmp_path: Path) -> Iterator[Processor]:
    (tmp_path / "r.yaml").write_text(RULES_YAML.format(extractor="ext", via="amqp") + COLLECT)
    engine = Engine(load_rules([str(tmp_path / "r.yaml")]))
    yield Processor(engine, store, extractor_message, archive=EventArchive(store))
    engine.close()


def process(processor: Processor, *numbers: int) -> None:
    processor.process([ListDelivery.from_record(n, record(n)) for n in numbers])


def count(store: SqlStore, table: object) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def message_ids(store: SqlStore) -> list[str]:
    with store.engine.connect() as connection:
        query = select(archive_table.c.message_id).order_by(archive_table.c.id)
        return list(connection.execute(query).scalars())


def test_archived_events_older_than_the_retention_are_pruned_in_batches(
    store: SqlStore, clock: FakeClock, processor: Processor
) -> None:
    process(processor, 1, 2, 3)
    clock.advance(31 * 86400)
    process(processor, 4)
    pruner = Pruner(store, retention_days=30, batch_rows=2, interval_s=0)
    pruner()  # two of the three old ones: a batch is at most two rows
    assert message_ids(store) == ["msg-00000003", "msg-00000004"]
    pruner()
    assert message_ids(store) == ["msg-00000004"]
    pruner()  # the memberships follow their events, two at a time too
    assert count(store, memberships) == 1
    assert count(store, messages) == 1


def test_a_message_id_older_than_the_retention_is_processed_again(
    store: SqlStore, clock: FakeClock, processor: Processor
) -> None:
    process(processor, 1)
    clock.advance(31 * 86400)
    Pruner(store, retention_days=30, interval_s=0)()
    process(processor, 1)  # redelivered after its ledger entry was pruned: new again
    assert message_ids(store) == ["msg-00000001"]
    with store.engine.connect() as connection:
        (arrived,) = connection.execute(select(archive_table.c.arrived_at)).scalars()
    assert arrived == clock.now


def test_a_row_limit_keeps_only_the_newest_events_ledger_ids_and_finished_outbox_rows(
    store: SqlStore, clock: FakeClock, processor: Processor
) -> None:
    for n in range(1, 6):
        process(processor, n)
        clock.advance(1)
    rows = store.claim_due(10, 30.0)
    assert store.mark_sent_many(rows)
    process(processor, 6)  # its outbox row is pending: never pruned
    deleted = prune_provenance(store, None, keep_rows=2, limit=500)
    assert message_ids(store) == ["msg-00000005", "msg-00000006"]
    assert deleted["archive"] == 4
    assert count(store, messages) == 2
    with store.engine.connect() as connection:
        statuses = connection.execute(select(submissions.c.status)).scalars().all()
    assert sorted(statuses) == ["pending", "sent", "sent"]


def test_rows_only_retention_keeps_age_forever(store: SqlStore, processor: Processor) -> None:
    process(processor, 1, 2)
    Pruner(store, retention_days=0, retention_rows=5, interval_s=0)()
    assert message_ids(store) == ["msg-00000001", "msg-00000002"]
