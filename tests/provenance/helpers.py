"""Replaying the demo day into a database with the archive on, as `replay --database` does."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.provenance.archive import EventArchive
from switchboard.provenance.versions import version_of
from switchboard.replay import ReplaySummary, replay
from switchboard.rules import load_rules
from switchboard.store.migrate import upgrade
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


def replayed_day(folder: Path, rules: Sequence[Path] = (RULES,)) -> str:
    """The URL of a migrated SQLite file in `folder` with the demo day replayed into it."""
    url = f"sqlite:///{folder / 'sb.db'}"
    upgrade(url)
    store = SqlStore(url)
    try:
        replay_day(store, rules)
    finally:
        store.close()
    return url


def rules_copy(folder: Path, *, collection_count: int | None = None) -> Path:
    """A copy of rules/ at `folder`/rules; with `collection_count`, its mosaic collection
    waits for that many members instead of the day's 30."""
    rules = folder / "rules"
    shutil.copytree(RULES, rules)
    if collection_count is not None:
        collections = rules / "collections.yaml"
        text = collections.read_text()
        assert "count: 30" in text
        collections.write_text(text.replace("count: 30", f"count: {collection_count}"))
    return rules
