"""Replaying the demo day into a database with the archive on, as `replay --database` does."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.provenance.archive import EventArchive
from switchboard.provenance.versions import version_of
from switchboard.replay import ReplaySummary, replay
from switchboard.rules import load_rules
from switchboard.store.sql import SqlStore
from switchboard.traffic import read_records

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
DAY = ROOT / "switchboard" / "demo" / "day.jsonl"


def day_records() -> list[dict]:
    return [record for _, record in read_records(DAY)]


def replay_day(
    store: SqlStore, rules: Sequence[Path] = (RULES,), records: list[dict] | None = None
) -> ReplaySummary:
    """The demo day (or `records`) through `rules` into `store`, archived."""
    paths = [str(p) for p in rules]
    ruleset = load_rules(paths)
    archive = EventArchive(store)
    archive.activate(version_of(paths, ruleset.names()), "replay")
    engine = Engine(ruleset)
    with contextlib.closing(engine):
        return replay(
            day_records() if records is None else records,
            engine,
            store,
            extractor_message,
            archive=archive,
        )
