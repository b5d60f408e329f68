"""`explain --event`: archived events explained under the rules of then, and of today."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from switchboard.cli import main
from tests.provenance.helpers import day_records, replayed_day, rules_copy

WEATHER = "59073fbc6f6af8c48ec0a64d"  # the day's first event: a weather CSV no rule wants


@pytest.fixture
def day_db(tmp_path: Path) -> tuple[str, Path]:
    """The demo day replayed, archived, into an SQLite file through a copy of rules/."""
    rules = rules_copy(tmp_path)
    return replayed_day(tmp_path, [rules]), rules


def explain(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["explain", "--database", url, *args])


def left_tif_event() -> str:
    return next(
        r["body"]["msgid"]
        for r in day_records()
        if r["body"]["source"]["extra"]["filename"].endswith("_left.tif")
    )


def test_an_unrouted_event_is_explained_with_the_rule_that_came_closest(
    day_db: tuple[str, Path],
) -> None:
    result = explain(day_db[0], "--event", WEATHER)
    assert result.exit_code == 0, result.output
    assert "no rule matched; nothing was submitted" in result.output
    assert "0 of 8 rule(s) match" in result.output
    assert "closest rule: geotiff-metadata-check (2 of 3 conditions held); it failed on:" in (
        result.output
    )
    assert "file.name isuffix '.tif': failed" in result.output.split("closest rule:")[1]


def test_a_collection_member_shows_the_collection_count_and_that_it_fired(
    day_db: tuple[str, Path],
) -> None:
    result = explain(day_db[0], "--event", left_tif_event())
    assert result.exit_code == 0, result.output
    assert "member '" in result.output
    assert "collection fullfield-rgb-mosaic 'fullfield-rgb/2017-05-01':" in result.output
    assert "fired: 30 of 30 members" in result.output


def test_a_collection_that_has_not_fired_says_what_it_still_waits_for(tmp_path: Path) -> None:
    url = replayed_day(tmp_path, [rules_copy(tmp_path, collection_count=40)])
    result = explain(url, "--event", left_tif_event())
    assert result.exit_code == 0, result.output
    assert "generation 1 open: 30 of 40 members" in result.output
    assert "not fired: count: 40 needs 10 more member(s)" in result.output


def test_explain_current_shows_what_changed_since_the_event(day_db: tuple[str, Path]) -> None:
    url, rules = day_db
    (rules / "weather.yaml").write_text(
        "- name: weather-csv\n"
        "  when: {file.name: {suffix: .csv}}\n"
        "  submit: {extractor: terra.weather, resource: file}\n"
    )
    result = explain(url, "--event", WEATHER, "--current", "--rules", str(rules))
    assert result.exit_code == 0, result.output
    changed = result.output.split("what changed:")[1]
    assert "weather-csv: new rule, matches" in changed
    assert "now also submits terra.weather 59073fbb6f6af8c48ec0a64c" in changed
    unchanged = explain(url, "--event", left_tif_event(), "--current", "--rules", str(rules))
    assert "weather-csv: new rule, does not match" in unchanged.output
    assert "same outcome: today's rules match and submit as those of then did" in unchanged.output


def test_an_event_not_in_the_archive_is_a_clear_error(day_db: tuple[str, Path]) -> None:
    result = explain(day_db[0], "--event", "no-such-message")
    assert result.exit_code == 1
    assert "no archived event 'no-such-message'" in result.output


def test_explain_takes_an_event_file_or_an_archived_event_not_both(
    day_db: tuple[str, Path], tmp_path: Path
) -> None:
    neither = CliRunner().invoke(main, ["explain"])
    assert neither.exit_code == 2
    assert "give EVENT_FILE or --event MESSAGE_ID" in neither.output
    body = tmp_path / "e.json"
    body.write_text("{}")
    stray = CliRunner().invoke(main, ["explain", str(body), "--current"])
    assert stray.exit_code == 2
    assert "--current and --database go with --event" in stray.output
