"""Tests, replay and event parsing read a recorded message the same way (`records`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.errors import MalformedEvent
from switchboard.events import event_from_record
from switchboard.records import RecordedMessage, message_from_record
from switchboard.replay import RecordedDelivery
from switchboard.testing import ListDelivery

BODY = {"id": "f1", "datasetId": "d1", "filename": "a.tif", "name": "é"}
RECORDS: list[Any] = [
    {"properties": {"routing_key": "from.properties", "reply_to": "r"}, "body": BODY},
    {"properties": {"routing_key": "elsewhere"}, "routing_key": "top.level", "body": BODY},
    {"body": json.dumps(BODY)},
    {"body": json.dumps(BODY).encode()},
    BODY,
]


@pytest.mark.parametrize("record", RECORDS)
def test_a_test_delivery_a_replayed_delivery_and_an_event_read_a_record_alike(record: Any) -> None:
    message = message_from_record(record)
    listed = ListDelivery.from_record(1, record)
    replayed = RecordedDelivery.from_record(1, record)
    event = event_from_record(record)
    for delivery in (listed, replayed):
        assert (delivery.body, dict(delivery.properties), delivery.routing_key) == (
            message.body,
            dict(message.properties),
            message.routing_key,
        )
    assert event.raw == message.body
    assert json.loads(message.body) == BODY


def test_the_records_routing_key_wins_and_is_not_left_among_the_properties() -> None:
    assert message_from_record(RECORDS[0]) == RecordedMessage(
        json.dumps(BODY, ensure_ascii=False).encode(), {"reply_to": "r"}, "from.properties"
    )
    assert message_from_record(RECORDS[1]).routing_key == "top.level"
    assert message_from_record(RECORDS[1]).properties == {}


def test_an_object_body_is_utf8_json_and_bytes_stay_as_they_are() -> None:
    assert message_from_record({"body": {"name": "é"}}).body == '{"name": "é"}'.encode()
    assert message_from_record({"body": b"\xff raw"}).body == b"\xff raw"
    assert message_from_record(b"\xff raw").body == b"\xff raw"


def test_record_parts_of_the_wrong_type_are_refused_by_name() -> None:
    with pytest.raises(MalformedEvent, match='record "properties" is a JSON array'):
        message_from_record({"properties": [], "body": BODY})
    with pytest.raises(MalformedEvent, match='record "routing_key" must be a string'):
        message_from_record({"routing_key": 7, "body": BODY})
    with pytest.raises(MalformedEvent, match="cannot be written as JSON"):
        ListDelivery.from_record(1, {"body": {"x": object()}})
