"""Benchmark (not a test): the daemon's commit path in one process, without a broker.

Feeds the `pipeline.py` workload through the real `Processor` (parse, enrich, match, one
PostgreSQL transaction per batch) and reports events/s for four variants, interleaved round by
round so a burst of machine load hits them alike:

  engine only          parse + match, no database (the ceiling the store is measured against)
  processor            what `switchboard run` does per batch today
  processor+prefetch   the same, the unit of work first recording the batch's message ids
                       and reading its datasets in one statement each
                       (`SqlUnitOfWork.record_processed_many` and `prefetch`), as
                       `Processor` could do
  no Python rules      processor+prefetch with the Python rules left out

Each variant gets a fresh schema per round. Run from the repository root:

    .venv/bin/python bench/store.py [--events 4000] [--rules 100] [--batch-size 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import Workload, encode, write_rules

from switchboard.engine import Engine
from switchboard.events import parse_event
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import RuleSet, load_rules
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"


class PrefetchingStore:
    """A Store whose units of work first prefetch the ids of the batch about to be processed."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.message_ids: list[str] = []
        self.dataset_ids: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    @contextmanager
    def unit_of_work(self) -> Iterator:
        with self.store.unit_of_work() as uow:
            uow.record_processed_many(self.message_ids)
            uow.prefetch(dataset_ids=self.dataset_ids)
            yield uow


@contextmanager
def fresh_store(run: str) -> Iterator[SqlStore]:
    schema = f"b_{run}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        upgrade(PG_URL, schema)
        store = SqlStore(PG_URL, schema=schema)
        try:
            yield store
        finally:
            store.close()
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def batches(bodies: list[dict], size: int) -> list[list[ListDelivery]]:
    deliveries = [
        ListDelivery(k + 1, encode(dict(body), 0.0), {}, "clowder.dataset.file.added")
        for k, body in enumerate(bodies)
    ]
    return [deliveries[i : i + size] for i in range(0, len(deliveries), size)]


def time_engine(engine: Engine, chunks: list[list[ListDelivery]]) -> float:
    from switchboard.model import DatasetView

    started = time.perf_counter()
    for chunk in chunks:
        for delivery in chunk:
            event = parse_event(
                delivery.body, delivery.properties, routing_key=delivery.routing_key
            )
            engine.evaluate(event, DatasetView(event.dataset_id or "", event.dataset_name))
    return time.perf_counter() - started


def time_processor(
    engine: Engine, chunks: list[list[ListDelivery]], run: str, prefetch: bool
) -> float:
    with fresh_store(run) as store:
        wrapped = PrefetchingStore(store) if prefetch else store
        processor = Processor(engine, wrapped, extractor_message)
        ids = [[json.loads(d.body) for d in chunk] for chunk in chunks] if prefetch else []
        started = time.perf_counter()
        for k, chunk in enumerate(chunks):
            if prefetch:
                wrapped.message_ids = [body["msgid"] for body in ids[k]]
                wrapped.dataset_ids = [body["datasetId"] for body in ids[k]]
            result = processor.process(chunk)
            if len(result.committed) != len(chunk):
                raise SystemExit(f"only {len(result.committed)} of {len(chunk)} committed")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder:
        write_rules(Path(folder), args.rules, f"bench{run}")
        ruleset = load_rules([folder])
    engine = Engine(ruleset)
    declarative = Engine(RuleSet([r for r in ruleset if r.kind != "python"]))
    chunks = batches(Workload(f"store{run}").bodies("measure", args.events), args.batch_size)
    variants = {
        "engine only": lambda: time_engine(engine, chunks),
        "processor": lambda: time_processor(engine, chunks, run, prefetch=False),
        "processor+prefetch": lambda: time_processor(engine, chunks, run, prefetch=True),
        "no Python rules": lambda: time_processor(declarative, chunks, run, prefetch=True),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, timed in variants.items():
            best[name] = min(best[name], timed())
    engine.close()
    declarative.close()
    print(
        f"{args.events:,} events, {args.rules} rules, batches of {args.batch_size}, best of "
        f"{args.rounds} rounds"
    )
    for name, seconds in best.items():
        print(f"{name:<20} {args.events / seconds:>9,.0f} events/s")


if __name__ == "__main__":
    main()
