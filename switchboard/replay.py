"""Runs recorded traffic through the same processor the daemon uses, on a local database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .collections.firing import Collector
from .debounce import DebounceSweeper
from .errors import ClowderRejected
from .outbox_queue import MessageBuilder
from .ports import Store
from .processor import BatchResult, Processor
from .provenance.hook import ArchiveHook
from .records import message_from_record


@dataclass(frozen=True)
class RecordedDelivery:
    """A `Delivery` built from a recorded `{properties, routing_key, body}` record."""

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any]
    routing_key: str = ""
    redelivered: bool = False

    @classmethod
    def from_record(cls, tag: int, record: Mapping[str, Any]) -> RecordedDelivery:
        message = message_from_record(record)
        return cls(tag, message.body, message.properties, message.routing_key)


class RecordedNames:
    """Dataset names carried beside recorded events (`dataset_name`), standing in for Clowder."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)

    def dataset_name(self, dataset_id: str, event: object = None) -> str:
        try:
            return self.names[dataset_id]
        except KeyError:
            raise ClowderRejected(f"dataset {dataset_id} not in the recording") from None


@dataclass
class ReplaySummary:
    """Totals of one replay, and submissions per target extractor."""

    events: int = 0
    duplicates: int = 0
    malformed: list[str] = field(default_factory=list)
    poison: list[str] = field(default_factory=list)
    rule_errors: list[str] = field(default_factory=list)
    per_target: Counter[str] = field(default_factory=Counter)
    per_rule: Counter[str] = field(default_factory=Counter)

    def add(self, result: BatchResult) -> None:
        self.duplicates += result.duplicates
        self.malformed += [f"message {d.delivery_tag}: {why}" for d, why in result.malformed]
        self.poison += [f"message {d.delivery_tag}: {why}" for d, why in result.poison]
        self.rule_errors += [f"{rule} on {msg}: {err}" for rule, msg, err in result.rule_errors]
        for s in result.submissions:
            self.per_target[s.extractor] += 1
            self.per_rule[s.rule] += 1


def replay(
    records: Iterable[Mapping[str, Any]],
    engine: Any,
    store: Store,
    message_builder: MessageBuilder,
    *,
    batch_size: int = 200,
    on_progress: Callable[[int], None] | None = None,
    archive: ArchiveHook | None = None,
) -> ReplaySummary:
    """Feed `records` through a Processor in batches, exactly as the daemon would (`archive`
    archives each batch's events in its transaction; its dead letters too, if it can)."""
    records = list(records)
    names = RecordedNames(
        {
            str(r["body"]["datasetId"]): str(r["dataset_name"])
            for r in records
            if r.get("dataset_name")
            and isinstance(r.get("body"), Mapping)
            and r["body"].get("datasetId")
        }
    )
    # Nothing is sent here, so no manifest file is due: no warning about a missing directory.
    collector = Collector(warn_without_manifest_dir=False)
    processor = Processor(
        engine, store, message_builder, dataset_names=names, collector=collector, archive=archive
    )
    dead_letters = getattr(archive, "record_dead_letters", None)
    summary = ReplaySummary()
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        batch = [RecordedDelivery.from_record(start + i + 1, r) for i, r in enumerate(chunk)]
        result = processor.process(batch)
        if dead_letters is not None:
            dead_letters([*result.malformed, *result.poison])
        summary.add(result)
        summary.events += len(chunk)
        if on_progress:
            on_progress(len(chunk))
    # The recording is over, so every burst is: debounced rules submit now, as they would once
    # their quiet period passed.
    for submission in DebounceSweeper(processor).sweep(everything=True):
        summary.per_target[submission.extractor] += 1
        summary.per_rule[submission.rule] += 1
    return summary
