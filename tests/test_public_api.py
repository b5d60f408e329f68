"""The curated public API: what rule authors import, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import switchboard


def test_everything_in_all_is_importable_from_the_package() -> None:
    missing = [name for name in switchboard.__all__ if not hasattr(switchboard, name)]
    assert not missing


def test_a_rule_author_can_test_a_rule_with_the_public_api_alone() -> None:
    @switchboard.rule(on="dataset.file.added")
    def tiffs(event: switchboard.Event, dataset: switchboard.DatasetView) -> object:
        if event.file is not None and event.file.name.endswith(".tif"):
            return switchboard.submit("terra.tif", resource="file")
        return None

    event = switchboard.event_from_record(
        {
            "routing_key": "clowder.dataset.file.added",
            "body": {
                "id": "f1",
                "datasetId": "d1",
                "source": {"extra": {"filename": "a.tif"}},
            },
        }
    )
    engine = switchboard.Engine([tiffs])
    try:
        evaluation = engine.evaluate(event, switchboard.DatasetView("d1"))
        targets = [s.extractor for s in evaluation.submissions]
    finally:
        engine.close()
    assert targets == ["terra.tif"]


def test_importing_switchboard_loads_no_broker_database_or_ray_client() -> None:
    probe = (
        "import sys, switchboard; "
        "print(sorted(m for m in ('pika', 'sqlalchemy', 'psycopg', 'ray') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
