"""Reading status updates from the status queue: pyclowder's body, or a clear reason why not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.amqp_delivery import AmqpDelivery
from switchboard.errors import MalformedEvent
from switchboard.jobs.status_messages import parse_status_message

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pyclowder_status_update.json"
UPDATE = json.loads(FIXTURE.read_text())["body"]


def _delivery(body: bytes, correlation_id: str | None = "job-1") -> AmqpDelivery:
    props = {"correlation_id": correlation_id} if correlation_id else {}
    return AmqpDelivery(1, body, props, "sb.status")


def test_a_pyclowder_update_is_read_with_its_own_time_and_job() -> None:
    message = parse_status_message(_delivery(json.dumps(UPDATE).encode()))

    assert (message.status, message.message) == ("started", "Started processing.")
    assert message.at == datetime(2024, 5, 1, 15, 20, 30, tzinfo=UTC)
    assert (message.correlation_id, message.named_job_id) == ("job-1", UPDATE["job_id"])
    assert message.body == UPDATE


def test_the_same_bytes_with_the_same_correlation_id_have_the_same_key() -> None:
    body = json.dumps(UPDATE).encode()

    first, again = parse_status_message(_delivery(body)), parse_status_message(_delivery(body))
    other = parse_status_message(_delivery(body, correlation_id="job-2"))

    assert first.key == again.key != other.key


def test_an_update_without_correlation_id_still_names_its_job_in_the_body() -> None:
    message = parse_status_message(_delivery(json.dumps(UPDATE).encode(), correlation_id=None))

    assert message.correlation_id is None and message.named_job_id == UPDATE["job_id"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (json.dumps({**UPDATE, "status": 3}).encode(), "no `status` text"),
        (
            json.dumps({**UPDATE, "status": "DONE", "message_type": None}).encode(),
            "names no known status",
        ),
        (json.dumps({**UPDATE, "start": "yesterday"}).encode(), "is not ISO 8601"),
    ],
)
def test_a_malformed_status_message_is_refused_saying_why(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        parse_status_message(_delivery(body))
