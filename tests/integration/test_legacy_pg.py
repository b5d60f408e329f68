"""The shipped legacy full-field rule on the real PostgreSQL: alone, and three daemons at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import rule_utils
from switchboard.store.migrate import upgrade
from tests.test_legacy_rules import (
    DAY_KEY,
    MOSAIC,
    Pipeline,
    geotiff,
    legacy_folder,
    mosaic_rows,
    raw_captures,
)

pytestmark = pytest.mark.postgres


def test_the_day_fires_once_and_a_script_reads_its_progress(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    upgrade(pg_url, pg_schema)
    sites = tmp_path / "sites"
    raw_captures(sites, 5)
    rules = legacy_folder(tmp_path / "rules", min_datasets=5, tolerance_pct=100)
    pipeline = Pipeline(pg_url, rules, sites, schema=pg_schema)
    try:
        first = pipeline.feed(*(geotiff(n) for n in range(4)))
        assert first.rule_errors == []
        assert first.per_target[MOSAIC] == 0
        with rule_utils.connect(pg_url, schema=pg_schema):
            assert len(rule_utils.retrieveProgressFromDB(DAY_KEY)["ids"]) == 4
            assert rule_utils.retrieveQueryCountsFromDB("Full Field -- ")["total"] == 4
        last = pipeline.feed(geotiff(4), geotiff(4, "right"), geotiff(0))
        assert last.per_target[MOSAIC] == 1
        assert len(mosaic_rows(pipeline.store)) == 1
    finally:
        pipeline.close()


@pytest.mark.parametrize("round_", range(5))
def test_three_daemons_sharing_the_day_fire_it_exactly_once(
    pg_url: str, pg_schema: str, tmp_path: Path, round_: int
) -> None:
    upgrade(pg_url, pg_schema)
    sites = tmp_path / "sites"
    captures = 30
    raw_captures(sites, captures)
    rules = legacy_folder(tmp_path / "rules", min_datasets=captures, tolerance_pct=100)
    pipelines = [Pipeline(pg_url, rules, sites, schema=pg_schema) for _ in range(3)]
    # each daemon gets every third capture, plus a re-announcement of a neighbour's
    shares = [
        [geotiff(n) for n in range(i, captures, 3)] + [geotiff((i + 1) % captures)]
        for i in range(3)
    ]
    failures: list[BaseException] = []
    fired: list[int] = []
    start = threading.Barrier(3)

    def consume(pipeline: Pipeline, records: list) -> None:
        try:
            start.wait()
            summary = pipeline.feed(*records)
            assert summary.rule_errors == []
            fired.append(summary.per_target[MOSAIC])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [
        threading.Thread(target=consume, args=pair) for pair in zip(pipelines, shares, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sum(fired) == 1
        assert len(mosaic_rows(pipelines[0].store)) == 1
    finally:
        for pipeline in pipelines:
            pipeline.close()
