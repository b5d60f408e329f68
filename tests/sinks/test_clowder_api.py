"""Tests of ClowderApiSink against FakeClowder (a real local HTTP server)."""

from __future__ import annotations

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
