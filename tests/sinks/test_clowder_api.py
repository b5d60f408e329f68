"""Tests of ClowderApiSink against FakeClowder (a real local HTTP server)."""

from __future__ import annotations

import logging

import pytest

from switchboard.clowder import ClowderClient
from switchboard.errors import ClowderRejected, ClowderUnavailable
from switchboard.sinks.clowder_api import ClowderApiSink
from switchboard.testing import FakeClowder


@pytest.fixture
def clowder():
    with FakeClowder() as fake:
        yield fake


def sink_for(fake: FakeClowder, **options) -> ClowderApiSink:
    return ClowderApiSink(ClowderClient(fake.url, fake.api_key, backoff_s=0.0, **options))


def test_dataset_row_becomes_a_dataset_extraction_request(clowder, make_row):
    row = make_row("terra.geotiff.fieldmosaic", "dataset", via="clowder-api", n=3)
    sink_for(clowder).send(row)
    [request] = clowder.extractions()
    assert request.path == f"/api/datasets/{row.submission.resource_id}/extractions"
    assert request.json == {"extractor": "terra.geotiff.fieldmosaic", "parameters": {"n": 3}}
    assert request.key == clowder.api_key


def test_file_row_becomes_a_file_extraction_request(clowder, make_row):
    row = make_row("ncsa.image.preview", "file", via="clowder-api")
    sink_for(clowder).send(row)
    [request] = clowder.extractions()
    assert request.path == f"/api/files/{row.submission.resource_id}/extractions"
    assert request.json["extractor"] == "ncsa.image.preview"


def test_clowder_down_is_reported_as_unavailable_for_the_relay_to_retry(clowder, make_row):
    clowder.fail_next(5, status=503)
    with pytest.raises(ClowderUnavailable):
        sink_for(clowder, retries=1).send(make_row("x", via="clowder-api"))


def test_clowder_refusal_is_reported_as_rejected(clowder, make_row):
    clowder.fail_next(1, status=400)
    with pytest.raises(ClowderRejected, match="400"):
        sink_for(clowder).send(make_row("x", "file", via="clowder-api"))


def test_a_file_not_yet_processed_is_unavailable_for_the_relay_to_retry(clowder, make_row):
    clowder.fail_next(5, status=409)  # protocol.md §4.2: 409 until the file is PROCESSED
    with pytest.raises(ClowderUnavailable, match="409"):
        sink_for(clowder, retries=1).send(make_row("x", "file", via="clowder-api"))


@pytest.mark.parametrize("resource_type", ["file", "dataset"])
def test_the_sink_returns_and_logs_clowders_v1_job_id_beside_ours(
    clowder, make_row, resource_type, caplog
):
    row = make_row("ncsa.image.preview", resource_type, via="clowder-api")
    with caplog.at_level(logging.INFO, logger="switchboard.sinks.clowder_api"):
        clowder_job = sink_for(clowder).send(row)
    assert clowder.job_ids == [clowder_job]
    assert f"job {row.submission.job_id} " in caplog.text
    assert f"Clowder job {clowder_job}" in caplog.text
    assert clowder.api_key not in caplog.text


@pytest.mark.parametrize(
    ("resource_type", "collection"), [("file", "files"), ("dataset", "datasets")]
)
def test_the_sink_submits_to_clowder_v2_and_returns_the_job_id_it_answers(
    make_row, resource_type, collection
):
    row = make_row("ncsa.image.preview", resource_type, via="clowder-api", n=3)
    with FakeClowder(api_version=2) as v2:
        clowder_job = sink_for(v2, api_version=2).send(row)
    [request] = v2.extractions()
    assert request.path == f"/api/v2/{collection}/{row.submission.resource_id}/extract"
    assert request.query == {"extractorName": "ncsa.image.preview"}  # no key in the URL
    assert request.json == {"n": 3}
    assert request.key == v2.api_key  # sent as X-API-KEY
    assert v2.job_ids == [clowder_job]


def test_a_v1_client_against_clowder_v2_gets_404_so_the_version_setting_matters(make_row):
    with FakeClowder(api_version=2) as v2, pytest.raises(ClowderRejected, match="404"):
        sink_for(v2).send(make_row("x", "file", via="clowder-api"))
