"""Backfill: a rule added after the demo day submits exactly what it would have, nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from switchboard.cli import main
from switchboard.outgoing import extractor_message
from switchboard.provenance.backfill import Backfill, only_rules
from switchboard.provenance.explain_past import explain_event
from switchboard.provenance.versions import version_of
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.store.statements import submissions
from tests.provenance.helpers import RULES, day_records, replay_day

NEW_RULES = """\
- name: weather-csv-ingest
  when:
    dataset.name: {prefix: "weather - "}
    file.name: {suffix: ".csv"}
  submit: {extractor: terra.weather.ingest, resource: file}
- name: scanner-pairs
  when: {dataset.name: {prefix: "scanner3DTop - "}}
  require:
    dataset.files: {where: {name: {suffix: ".ply"}}, count: {gte: 2}}
  submit: {extractor: terra.scanner.pairs, resource: dataset}
"""


def outbox(store: SqlStore) -> dict[str, str]:
    """job id -> extractor of every outbox row."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(submissions.c.job_id, submissions.c.extractor))
        return dict(rows.all())


def new_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "new"
    folder.mkdir(exist_ok=True)
    (folder / "new.yaml").write_text(NEW_RULES)
    return folder


def backfill(store: SqlStore, paths: list[Path], names: tuple[str, ...] = (), **kw: object):
    strings = [str(p) for p in paths]
    ruleset = load_rules(strings)
    job = Backfill(
        store, only_rules(ruleset, names), version_of(strings, ruleset.names()), extractor_message
    )
    return job.run(**kw)  # type: ignore[arg-type]


def weather_csv_files() -> set[str]:
    return {
        r["body"]["id"]
        for r in day_records()
        if r["dataset_name"].startswith("weather - ")
        and r["body"]["source"]["extra"]["filename"].endswith(".csv")
    }


def scanner_datasets_with_two_plys() -> set[str]:
    plys: dict[str, int] = {}
    for r in day_records():
        name = r["body"]["source"]["extra"]["filename"]
        if r["dataset_name"].startswith("scanner3DTop - ") and name.endswith(".ply"):
            plys[r["body"]["datasetId"]] = plys.get(r["body"]["datasetId"], 0) + 1
    return {d for d, n in plys.items() if n >= 2}


@pytest.mark.postgres
def test_a_rule_added_after_the_demo_day_is_backfilled_with_exactly_its_new_submissions(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        replay_day(store)
        before = outbox(store)
        summary = backfill(store, [RULES, new_rules(tmp_path)])
        after = outbox(store)
        again = backfill(store, [RULES, new_rules(tmp_path)])
        assert outbox(store) == after
    finally:
        store.close()

    added = {job: extractor for job, extractor in after.items() if job not in before}
    assert all(after[job] == extractor for job, extractor in before.items())  # old ones kept
    resources = {(s.extractor, s.resource_id) for s in summary.submissions}
    expected = {("terra.weather.ingest", f) for f in weather_csv_files()}
    expected |= {("terra.scanner.pairs", d) for d in scanner_datasets_with_two_plys()}
    assert resources == expected
    assert len(summary.submissions) == len(expected) == len(added)
    assert set(added) == {s.job_id for s in summary.submissions}
    assert summary.events == 203
    assert again.submissions == []
    assert summary.errors == []


def test_backfilling_the_rules_of_the_day_again_submits_nothing(sql_store: SqlStore) -> None:
    replay_day(sql_store)
    before = outbox(sql_store)
    summary = backfill(sql_store, [RULES])
    assert summary.submissions == []
    assert outbox(sql_store) == before


def test_backfill_takes_only_the_named_rule_and_dataset(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    replay_day(sql_store)
    dataset = next(
        r["body"]["datasetId"] for r in day_records() if r["dataset_name"].startswith("weather")
    )
    summary = backfill(
        sql_store, [new_rules(tmp_path)], ("weather-csv-ingest",), dataset_id=dataset
    )
    in_dataset = {
        r["body"]["id"]
        for r in day_records()
        if r["body"]["datasetId"] == dataset and r["body"]["id"] in weather_csv_files()
    }
    assert {s.resource_id for s in summary.submissions} == in_dataset
    assert {s.rule for s in summary.submissions} == {"weather-csv-ingest"}


def test_a_backfilled_submission_is_recorded_in_its_events_archived_outcome(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    replay_day(sql_store)
    summary = backfill(sql_store, [new_rules(tmp_path)], ("weather-csv-ingest",))
    first = summary.submissions[0]
    with sql_store.engine.connect() as connection:
        lines = explain_event(connection, first.event_message_id, Settings())
    assert any(f"job {first.job_id}" in line and "backfilled" in line for line in lines)


def test_a_dry_run_lists_what_it_would_submit_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    upgrade(url)
    store = SqlStore(url)
    try:
        replay_day(store)
        before = outbox(store)
        with store.engine.connect() as connection:
            archived = connection.execute(select(func.count()).select_from(submissions)).scalar()
    finally:
        store.close()
    runner = CliRunner()
    args = ["backfill", "--rules", str(new_rules(tmp_path)), "--database", url]
    dry = runner.invoke(main, [*args, "--rule", "weather-csv-ingest", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would submit terra.weather.ingest file") == len(weather_csv_files())
    assert f"would submit {len(weather_csv_files())}" in dry.output
    store = SqlStore(url)
    try:
        assert outbox(store) == before
        assert len(before) == archived
    finally:
        store.close()
    real = runner.invoke(main, [*args, "--rule", "weather-csv-ingest"])
    assert real.exit_code == 0, real.output
    assert f"terra.weather.ingest  {len(weather_csv_files())}" in real.output
    assert f"submitted {len(weather_csv_files())}, 0 already submitted" in real.output
    repeat = runner.invoke(main, [*args, "--rule", "weather-csv-ingest"])
    assert "submitted 0" in repeat.output


def test_backfill_refuses_a_rule_name_it_was_not_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    upgrade(url)
    result = CliRunner().invoke(
        main, ["backfill", "--rules", str(new_rules(tmp_path)), "--rule", "nope", "--database", url]
    )
    assert result.exit_code == 1
    assert "no rule named nope" in result.output
