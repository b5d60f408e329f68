"""`switchboard status` shows collections; `switchboard manifest ID` prints one firing's members."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.store.collection_report import progress_bar
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.collections.helpers import DATASET, close, feed, make_processor, mosaic_rule
from tests.integration.clowder_events import file_id


@pytest.fixture
def url(tmp_path: Path) -> str:
    made = f"sqlite:///{tmp_path / 'status.db'}"
    upgrade(made)
    return made


@pytest.fixture
def fired_manifest(url: str, tmp_path: Path) -> Iterator[str]:
    """One fired collection of 3 members and one open collection holding 1 of 3."""
    store = SqlStore(url)
    processor = make_processor(store, tmp_path, mosaic_rule("{count: 3}"))
    try:
        [submission] = feed(processor, [1, 2, 3]).submissions
        feed(processor, [4], dataset="other-dataset")
        yield submission.parameters["manifest_id"]
    finally:
        close(processor)
        store.close()


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_status_lists_open_collections_with_progress_and_fired_ones_with_ids(url, fired_manifest):
    lines = run("status", "--database", url).splitlines()
    opened = lines.index("open collections (1):")
    assert lines[opened + 1].split() == [
        "mosaic", "mosaic/other-dataset", "gen", "1", "1/3", "33.3%", progress_bar(1, 3),
    ]  # fmt: skip
    fired = next(line for line in lines if f"mosaic/{DATASET}" in line)
    assert "3 members" in fired and f"manifest {fired_manifest}" in fired
    assert "job " in fired


def test_manifest_prints_sorted_members_with_their_data(url, fired_manifest):
    text = run("manifest", fired_manifest, "--database", url)
    assert f"key: mosaic/{DATASET}" in text
    members = [line.split()[0] for line in text.splitlines() if line.startswith("  ")]
    assert members == [file_id(n) for n in (1, 2, 3)]


def test_manifest_json_lists_the_sorted_members_with_their_data(url, fired_manifest):
    found = json.loads(run("manifest", fired_manifest, "--database", url, "--json"))
    assert found["member_count"] == 3
    assert found["members"][0] == {
        "member": file_id(1),
        "data": {"path": "/data/plot-00001_left.tif", "plot": "00001"},
    }


def test_an_unknown_manifest_is_an_error(url):
    result = CliRunner().invoke(main, ["manifest", "nope", "--database", url])
    assert result.exit_code == 1
    assert "no manifest nope" in result.output


def test_the_progress_bar_fills_with_the_count():
    assert progress_bar(0, 4, width=4) == "[----]"
    assert progress_bar(3, 4, width=4) == "[###-]"
    assert progress_bar(9, 4, width=4) == "[####]"
    assert progress_bar(3, None) == "[?]"
