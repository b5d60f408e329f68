"""What a real pyclowder 3.0.8 extractor sends back for a message Switchboard builds (issue 9).

Each test runs an extractor script of extractors/ from its own virtualenv against the real
RabbitMQ and a local Clowder v1 REST API, publishes the dataset message `extractor_message`
builds (with a reply_to and a correlation_id, as Clowder sends them), and reads the status
updates pyclowder publishes to that reply_to. These pin the wire facts protocol.md §3 lists.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pika
import pytest

from switchboard.events import event_from_record
from switchboard.fake_clowder import FakeClowder
from switchboard.jobids import job_id
from switchboard.model import Submission
from switchboard.outgoing import extractor_message
from tests.integration.clowder_events import DATASET, record
from tests.integration.pyclowder.conftest import TRIGGER, URI
from tests.integration.pyclowder.harness import (
    UPDATE_KEYS,
    ExtractorProcess,
    Update,
    ends_with,
    read_updates,
    take_all,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(600)]  # the first builds the venv

ISO_8601_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
FAILURE = f"the test extractor failed on purpose for dataset {DATASET}"


def send_dataset_job(
    extractor: ExtractorProcess,
    clowder: FakeClowder,
    reply_to: str,
    correlation_id: str,
    **body_changes: Any,
) -> tuple[dict[str, Any], str]:
    """Publish to the extractor the message Switchboard builds for a dataset submission caused
    by file TRIGGER of DATASET (with `body_changes`); (the body, our job id)."""
    event = event_from_record(record(TRIGGER, host=clowder.url, secret_key=clowder.api_key))
    submission = Submission(
        job_id=job_id("pyclowder-rule", extractor.queue, "dataset", DATASET),
        rule="pyclowder-rule",
        extractor=extractor.queue,
        resource_type="dataset",
        resource_id=DATASET,
        via="amqp",
        parameters={"mode": "fast"},
        event_message_id=event.message_id,
    )
    body, props = extractor_message(event, submission)
    body.update(body_changes)
    props.update(reply_to=reply_to, correlation_id=correlation_id)
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    try:
        connection.channel().basic_publish(
            "", extractor.queue, json.dumps(body).encode(), pika.BasicProperties(**props)
        )
    finally:
        connection.close()
    return body, submission.job_id


def updates_until(extractor: ExtractorProcess, reply_to: str, *last: str) -> list[Update]:
    return read_updates(URI, reply_to, until=ends_with(*last), describe=extractor.output)


def assert_pyclowder_shaped(updates: list[Update], extractor: ExtractorProcess, job: str) -> None:
    """Every update has the seven keys, names the dataset, this extractor and our job id, and
    its `status` is `<message_type>: <message>`; it is persistent, with no content type."""
    for update in updates:
        body = update.body
        assert set(body) == UPDATE_KEYS, body
        assert body["file_id"] == DATASET
        assert body["extractor_id"] == extractor.queue
        assert body["job_id"] == job
        assert body["message_type"].startswith("StatusMessage.")
        assert body["status"] == f"{body['message_type']}: {body['message']}"
        assert ISO_8601_WITH_OFFSET.match(body["start"]), body["start"]
        assert update.delivery_mode == 2
        assert update.content_type is None  # pyclowder sets none on status updates


def test_a_succeeding_extractor_reports_start_processing_done_to_the_reply_to(
    extractor, clowder, reply_queue
):
    correlation = str(uuid.uuid4())
    with extractor("succeeds.py") as running:
        _, job = send_dataset_job(running, clowder, reply_queue, correlation)
        updates = updates_until(running, reply_queue, "done")
        assert [u.step for u in updates] == ["start", "processing", "done"]
        assert [u.body["message"] for u in updates] == [
            "Started processing.",
            f"Looked at 2 files: plot-0000{TRIGGER}_left.tif, plot-00007_right.tif",
            "Done processing.",
        ]
        assert {u.correlation_id for u in updates} == {correlation}
        assert_pyclowder_shaped(updates, running, job)
        assert take_all(URI, running.queue) == []  # acked
        assert take_all(URI, f"error.{running.queue}") == []
    asked = [(r.method, r.path, r.key) for r in clowder.requests]
    assert asked == [
        ("GET", f"/api/datasets/{DATASET}", clowder.api_key),
        ("GET", f"/api/datasets/{DATASET}/files", clowder.api_key),
    ]


def test_an_ignoring_check_message_reports_start_skip_done(extractor, clowder, reply_queue):
    correlation = str(uuid.uuid4())
    with extractor("ignores.py") as running:
        _, job = send_dataset_job(running, clowder, reply_queue, correlation)
        updates = updates_until(running, reply_queue, "skip", "done")
        assert [u.step for u in updates] == ["start", "skip", "done"]
        assert updates[1].body["message"] == "Skipped in check_message"
        assert updates[1].body["status"] == "StatusMessage.skip: Skipped in check_message"
        assert {u.correlation_id for u in updates} == {correlation}
        assert_pyclowder_shaped(updates, running, job)
        assert take_all(URI, running.queue) == []


def test_an_aborting_extractor_reports_start_error_and_parks_the_original_body(
    extractor, clowder, reply_queue
):
    correlation = str(uuid.uuid4())
    with extractor("fails.py", FAIL_WITH="abort") as running:
        body, job = send_dataset_job(running, clowder, reply_queue, correlation)
        updates = updates_until(running, reply_queue, "error")
        assert [u.step for u in updates] == ["start", "error"]
        assert updates[1].body["message"] == f"Aborting message: {FAILURE}"
        assert {u.correlation_id for u in updates} == {correlation}
        assert_pyclowder_shaped(updates, running, job)
        parked = take_all(URI, f"error.{running.queue}")
        assert [b for _, b in parked] == [body]
        assert parked[0][0].reply_to == reply_queue
        assert parked[0][0].correlation_id is None
        assert take_all(URI, running.queue) == []


def test_an_exception_is_retried_ten_times_whatever_max_retry_says_repeats_lose_correlation(
    extractor, clowder, reply_queue
):
    """pyclowder 3.0.8's RabbitMQHandler is built without `max_retry`, so it keeps its default
    10; a body already at retry_count 8 is retried twice more. The republished message keeps
    reply_to but not the correlation_id (only the job id in the body still names the job)."""
    correlation = str(uuid.uuid4())
    with extractor("fails.py", FAIL_WITH="exception", MAX_RETRY="0") as running:
        _, job = send_dataset_job(running, clowder, reply_queue, correlation, retry_count=8)
        updates = updates_until(running, reply_queue, "error")
        assert [u.step for u in updates] == ["start", "retry", "start", "retry", "start", "error"]
        assert [u.body["message"] for u in updates[1::2]] == [
            f"(#9) {FAILURE}",
            f"(#10) {FAILURE}",
            FAILURE,
        ]
        assert [u.correlation_id for u in updates] == [correlation, correlation] + [None] * 4
        assert_pyclowder_shaped(updates, running, job)
        (parked_props, parked), *rest = take_all(URI, f"error.{running.queue}")
        assert rest == []
        assert parked["retry_count"] == 10
        assert parked_props.reply_to == reply_queue
        assert parked_props.correlation_id is None


def test_a_dataset_clowder_cannot_list_reports_only_an_error_without_start(
    extractor, clowder, reply_queue
):
    clowder.failing_datasets[DATASET] = 500
    correlation = str(uuid.uuid4())
    with extractor("succeeds.py") as running:
        body, job = send_dataset_job(running, clowder, reply_queue, correlation)
        updates = updates_until(running, reply_queue, "error")
        assert [u.step for u in updates] == ["error"]
        assert updates[0].body["message"] == "Error processing message."
        assert updates[0].correlation_id == correlation
        assert_pyclowder_shaped(updates, running, job)
        assert [b for _, b in take_all(URI, f"error.{running.queue}")] == [body]
