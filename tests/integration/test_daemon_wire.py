"""The daemon, in a thread, on the real RabbitMQ and PostgreSQL: what goes in, what comes out."""

from __future__ import annotations

import json

import pytest

from switchboard.jobs.tracking import ORIGINAL_CORRELATION_HEADER, ORIGINAL_REPLY_TO_HEADER
from switchboard.source import ERROR_HEADER
from tests.integration.clowder_events import DATASET, REPLY_TO, expected_job, file_added, file_id
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def test_an_event_becomes_exactly_the_expected_extractor_message(wiring):
    wiring.publish([7])
    with running(wiring.settings()):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the submission to be sent")
    ((props, body),) = wiring.drain(wiring.extractor)
    job = expected_job(7, wiring.extractor)
    original = file_added(7)
    assert body["rulechecked"] is True
    assert body["job_id"] == body["jobid"] == job
    assert body["clowder_jobid"] == original["jobid"]  # Clowder's own id does not leak
    assert body["parameters"] == {"mode": "fast"}
    assert body["routing_key"] == f"extractors.{wiring.extractor}"
    assert (body["id"], body["datasetId"]) == (file_id(7), DATASET)  # a file resource
    assert body["filename"] == "plot-00007_left.tif"
    for key in ("host", "secretKey", "notifies", "flags", "fileSize", "source"):
        assert body[key] == original[key]
    assert props.message_id == job
    assert props.delivery_mode == 2
    assert props.content_type == "application/json"
    # replies come to our status queue, mapped back by our job id; Clowder's are kept
    assert props.reply_to == f"{wiring.queue}.status"
    assert props.correlation_id == job
    assert props.headers[ORIGINAL_REPLY_TO_HEADER] == REPLY_TO
    assert props.headers[ORIGINAL_CORRELATION_HEADER] == "corr-7"
    assert wiring.depth(wiring.queue) == 0


def test_the_same_message_id_delivered_twice_yields_one_submission(wiring):
    wiring.publish([1, 1, 2])
    with running(wiring.settings()):
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "two submissions sent")
        wiring.publish([1])  # a redelivery after the first was committed and relayed
        wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "the input queue to empty")
    messages = wiring.drain(wiring.extractor)
    assert sorted(p.message_id for p, _ in messages) == sorted(
        expected_job(n, wiring.extractor) for n in (1, 2)
    )
    assert wiring.query("SELECT count(*) FROM processed_messages") == [(2,)]


def test_malformed_and_poison_events_land_in_the_error_queue_intact(wiring):
    poison = file_added(3, name="bad\u0000name.tif")  # PostgreSQL text cannot hold NUL
    wiring.publish([1])
    wiring.publish_raw(b"{not json", message_id="m-broken", reply_to="clowder.x", priority=3)
    wiring.publish_raw(json.dumps(poison).encode(), correlation_id="c-poison")
    wiring.publish([2])
    error_queue = f"error.{wiring.queue}"
    with running(wiring.settings()):
        wait_for(lambda: wiring.depth(error_queue) == 2, 30, "two dead letters")
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "the good events' submissions")
        wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "everything acked")
    (malformed_props, malformed), (poison_props, poisoned) = wiring.drain(error_queue)
    assert malformed == b"{not json"
    assert malformed_props.message_id == "m-broken"
    assert malformed_props.reply_to == "clowder.x"
    assert malformed_props.priority == 3
    assert "JSON" in malformed_props.headers[ERROR_HEADER]
    assert poisoned == poison
    assert poison_props.correlation_id == "c-poison"
    assert poison_props.headers[ERROR_HEADER].startswith("processing failed")
