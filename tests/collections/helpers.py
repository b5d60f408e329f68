"""Builders for collection tests: rule files, numbered file events and a processor on a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import BatchResult, Processor
from switchboard.rules import load_rules
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import DATASET, record

MOSAIC = "terra.geotiff.fieldmosaic"


def mosaic_rule(
    until: str,
    *,
    extra: str = "",
    name: str = "mosaic",
    extractor: str = MOSAIC,
    key: str = "mosaic/{dataset.id}",
) -> str:
    """A collect rule gathering `_left.tif` files per dataset."""
    return f"""\
- name: {name}
  on: dataset.file.added
  when:
    file.name: {{regex: '^plot-(?P<plot>\\d+)_left\\.tif$'}}
  collect:
    key: "{key}"
    member: "{{file.id}}"
    data: {{path: "/data/{{file.name}}", plot: "{{plot}}"}}
    until: {until}
{extra}  submit:
    extractor: {extractor}
    resource: dataset
    parameters: {{output_dataset: "Full Field"}}
"""


def make_processor(store: SqlStore, tmp_path: Path, rules_text: str, **kwargs: Any) -> Processor:
    path = tmp_path / "collect.yaml"
    path.write_text(rules_text)
    return Processor(Engine(load_rules([str(path)])), store, extractor_message, **kwargs)


def feed(processor: Processor, numbers: range | list[int], **kwargs: Any) -> BatchResult:
    """Process file events `numbers` (one batch); `kwargs` go to `record` (e.g. dataset=)."""
    deliveries = [
        ListDelivery.from_record(tag, record(n, **kwargs)) for tag, n in enumerate(numbers, 1)
    ]
    return processor.process(deliveries)


def close(processor: Processor) -> None:
    processor.engine.close()


__all__ = ["DATASET", "MOSAIC", "close", "feed", "make_processor", "mosaic_rule"]
