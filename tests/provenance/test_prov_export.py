"""`switchboard prov`: W3C PROV documents that validate against PROV-JSON and load back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import prov
import pytest
from click.testing import CliRunner, Result
from prov.model import ProvDocument
from sqlalchemy import select

from switchboard.cli import main
from switchboard.store.collection_tables import CollectionFiring
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.provenance.helpers import day_records, replay_day, replayed_day, rules_copy

SCHEMA = Path(prov.__file__).parent / "tests" / "schemas" / "prov-json.schema.json"
KEY = "fullfield-rgb/2017-05-01"


@pytest.fixture(scope="module")
def day_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return replayed_day(tmp_path_factory.mktemp("prov"))


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["prov", "--database", url, *args])


def valid(text: str) -> dict[str, Any]:
    """The document, after checking it against the W3C PROV-JSON schema and loading it."""
    document = json.loads(text)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    ProvDocument.deserialize(content=text, format="json")
    return document


def left_tif_events() -> set[str]:
    return {
        r["body"]["msgid"]
        for r in day_records()
        if r["dataset_name"].startswith("RGB GeoTIFFs - ")
        and r["body"]["source"]["extra"]["filename"].endswith("_left.tif")
    }


def test_the_fieldmosaic_firing_validates_and_names_all_its_member_events(day_url: str) -> None:
    result = run(day_url, "--collection", KEY)
    assert result.exit_code == 0, result.output
    document = valid(result.output)
    (manifest,) = [e for e in document["entity"] if e.startswith("manifest:")]
    derived = {
        r["prov:usedEntity"]
        for r in document["wasDerivedFrom"].values()
        if r["prov:generatedEntity"] == manifest
    }
    assert derived == {f"event:{m}" for m in left_tif_events()}
    assert len(derived) == 30
    (generation,) = [r for r in document["wasGeneratedBy"].values() if r["prov:entity"] == manifest]
    assert generation["prov:activity"].endswith(".fullfield-rgb-mosaic")
    jobs = [a for a in document["activity"] if a.startswith("job:")]
    assert len(jobs) == 1
    informed = [r for r in document["wasInformedBy"].values() if r["prov:informed"] == jobs[0]]
    assert informed[0]["prov:informant"] == generation["prov:activity"]
    job = document["activity"][jobs[0]]
    assert job["sb:extractor"] == "terra.geotiff.fieldmosaic"
    assert job["sb:status"] == "pending"  # replay sends nothing


def test_an_event_document_has_its_evaluations_rule_version_and_agents(day_url: str) -> None:
    event = sorted(left_tif_events())[0]
    result = run(day_url, "--event", event)
    document = valid(result.output)
    assert f"event:{event}" in document["entity"]
    own = f"evaluation:{event}."
    evaluations = {k: v for k, v in document["activity"].items() if k.startswith(own)}
    rules = {v["sb:rule"] for v in evaluations.values()}
    assert rules == {"fullfield-rgb-mosaic", "plotclipper-left-geotiff"}
    clip = next(v for v in evaluations.values() if v["sb:rule"] == "plotclipper-left-geotiff")
    assert "file.name iglob '*_LEFT.TIF': held" in clip["sb:conditions"]
    versions = [e for e in document["entity"] if e.startswith("rules:")]
    assert len(versions) == 1
    assert any(e.startswith("manifest:") for e in document["entity"])  # it is a member of one
    used = {(r["prov:activity"], r["prov:entity"]) for r in document["used"].values()}
    for evaluation in evaluations:
        assert (evaluation, f"event:{event}") in used
        assert (evaluation, versions[0]) in used
    assert "extractor:terra.plotclipper_tif" in document["agent"]
    assert any(a.startswith("agent:switchboard-") for a in document["agent"])


def test_a_job_document_links_the_job_to_its_decision(day_url: str) -> None:
    store = SqlStore(day_url)
    try:
        with store.engine.connect() as connection:
            table = CollectionFiring.__table__
            job_id = connection.execute(select(table.c.job_id)).scalar_one()
    finally:
        store.close()
    document = valid(run(day_url, "--job", job_id).output)
    assert f"job:{job_id}" in document["activity"]
    assert any(e.startswith("manifest:") for e in document["entity"])


def test_a_dataset_document_holds_every_archived_event_of_the_dataset(day_url: str) -> None:
    record = next(r for r in day_records() if r["dataset_name"].startswith("stereoTop - "))
    dataset = record["body"]["datasetId"]
    expected = {r["body"]["msgid"] for r in day_records() if r["body"]["datasetId"] == dataset}
    document = valid(run(day_url, "--dataset", dataset).output)
    events = {e.removeprefix("event:") for e in document["entity"] if e.startswith("event:")}
    assert events == expected
    assert f"dataset:{dataset}" in document["entity"]


def test_provn_goes_to_the_file_given(day_url: str, tmp_path: Path) -> None:
    out = tmp_path / "doc.provn"
    result = run(
        day_url, "--collection", KEY, "--generation", "1", "--format", "provn", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("document")
    assert "wasDerivedFrom(manifest:" in text


def test_prov_needs_exactly_one_subject_and_says_when_it_finds_nothing(day_url: str) -> None:
    assert run(day_url).exit_code == 2
    assert run(day_url, "--job", "a", "--event", "b").exit_code == 2
    missing = run(day_url, "--event", "no-such-message")
    assert missing.exit_code == 1
    assert "no archived event no-such-message" in missing.output
    assert run(day_url, "--collection", KEY, "--generation", "7").exit_code == 1


def test_a_collection_not_fired_yet_is_an_open_collection_of_its_member_events(
    tmp_path: Path,
) -> None:
    url = replayed_day(tmp_path, [rules_copy(tmp_path, collection_count=40)])
    document = valid(run(url, "--collection", KEY).output)
    (open_collection,) = [e for e in document["entity"] if e.startswith("collection:")]
    assert document["entity"][open_collection]["prov:type"]["$"] == "sb:OpenCollection"
    derived = {
        r["prov:usedEntity"]
        for r in document["wasDerivedFrom"].values()
        if r["prov:generatedEntity"] == open_collection
    }
    assert derived == {f"event:{m}" for m in left_tif_events()}


def test_a_job_activity_takes_its_status_start_and_end_from_the_job_timeline(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from switchboard.jobs.store import JobStore
    from switchboard.store.job_records import Update

    url = f"sqlite:///{tmp_path / 'sb.db'}"
    upgrade(url)
    store = SqlStore(url)
    try:
        replay_day(store)
        with store.engine.connect() as connection:
            job_id = connection.execute(select(CollectionFiring.__table__.c.job_id)).scalar_one()
        jobs = JobStore(store.engine)
        started = datetime(2017, 5, 2, 6, 0, 1, tzinfo=UTC)
        ended = datetime(2017, 5, 2, 6, 42, 10, tzinfo=UTC)
        jobs.record(job_id, Update("u1", "started", started, "mosaic started", "extractor"))
        jobs.record(job_id, Update("u2", "succeeded", ended, "mosaic done", "extractor"))
    finally:
        store.close()
    document = valid(run(url, "--job", job_id).output)
    job = document["activity"][f"job:{job_id}"]
    assert job["sb:status"] == "succeeded"
    assert job["sb:facts_from"] == "jobs"
    assert datetime.fromisoformat(job["prov:startTime"]) == started
    assert datetime.fromisoformat(job["prov:endTime"]) == ended
    assert datetime.fromisoformat(job["sb:started_at"]["$"]) == started
    assert [u["status"] for u in json.loads(job["sb:timeline"])][-2:] == ["started", "succeeded"]
    (generated,) = [
        r for r in document["wasGeneratedBy"].values() if r["prov:activity"] == f"job:{job_id}"
    ]
    assert generated["prov:entity"] == f"result:{job_id}"
    assert document["entity"][f"result:{job_id}"]["sb:status"] == "succeeded"
