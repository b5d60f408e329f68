"""Builders for rule-control tests: a processor over YAML rules, numbered events, outbox rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import BatchResult, Processor
from switchboard.rules import load_rules
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import record

EXTRACTOR = "test.controls"


def processor(tmp_path: Path, store: SqlStore, rules_yaml: str) -> Processor:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_yaml)
    return Processor(Engine(load_rules([str(path)])), store, extractor_message)


def events(*numbers: int, start_tag: int = 1, **kwargs: Any) -> list[ListDelivery]:
    return [
        ListDelivery.from_record(tag, record(n, **kwargs))
        for tag, n in enumerate(numbers, start=start_tag)
    ]


def copies(*numbers: int, start_tag: int = 100) -> list[ListDelivery]:
    """Events for the same files under new message ids (Clowder sending them again)."""
    return [
        replace(d, body=d.body.replace(b'"msg-', b'"copy-'))
        for d in events(*numbers, start_tag=start_tag)
    ]


def job_ids(store: SqlStore) -> list[str]:
    return sorted(row.submission.job_id for row in store.recent_submissions(10_000))


def parameters(store: SqlStore) -> list[dict[str, Any]]:
    rows = sorted(store.recent_submissions(10_000), key=lambda r: r.submission.event_message_id)
    return [dict(row.submission.parameters) for row in rows]


def submitted(result: BatchResult) -> int:
    return len(result.submissions)
