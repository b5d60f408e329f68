"""Parsing every Clowder body shape into an Event, and refusing everything else precisely."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.errors import MalformedEvent
from switchboard.events import event_from_json, event_from_record, load_event_file, parse_event
from switchboard.model import Event, EventKind, FileInfo

FIXTURES = Path(__file__).parent / "fixtures"
NOT_EVENTS = ("pyclowder_heartbeat.json", "pyclowder_status_update.json")
EVENT_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json") if p.name not in NOT_EVENTS)
LEGACY_KEY = "clowder.dataset.file.added"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def body_of(name: str) -> dict[str, Any]:
    return fixture(name)["body"]


def encode(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def reason_for(body: bytes, **kwargs: Any) -> str:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(body, **kwargs)
    return caught.value.reason


# --- every fixture -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVENT_FIXTURES)
def test_every_event_fixture_parses(name: str) -> None:
    event = load_event_file(FIXTURES / name)
    assert isinstance(event, Event)
    assert event.resource_id == body_of(name)["id"]


@pytest.mark.parametrize("name", NOT_EVENTS)
def test_heartbeats_and_status_updates_are_refused_as_not_events(name: str) -> None:
    with pytest.raises(MalformedEvent, match=r"not an event: this is a pyclowder|status update"):
        event_from_record(fixture(name))


def test_the_fixture_count_is_what_the_brief_describes() -> None:
    assert len(EVENT_FIXTURES) == 5


# --- Clowder v1 current ------------------------------------------------------------------------


def test_v1_dataset_file_added_is_normalised_field_by_field() -> None:
    record = fixture("v1_dataset_file_added.json")
    event = event_from_record(record)
    assert event.kind is EventKind.FILE_ADDED
    assert event.message_id == "65a1f0c2e4b0a1b2c3d4e5f6"
    assert event.resource_id == "65a1f0b9e4b0a1b2c3d4e5aa"
    assert event.dataset_id == "65a1f0a0e4b0a1b2c3d4e500"
    assert event.file == FileInfo(
        "65a1f0b9e4b0a1b2c3d4e5aa", "2017-05-01__10-20-30-123_left.tif", "image/tiff", 1_048_576
    )
    assert event.host == "https://clowder.example.org"
    assert event.routing_key == "clowder.dataset.file.added"
    assert event.reply_to == "clowder.a1b2c3d4e5"
    assert event.correlation_id == "0b6f1c8e-2f4e-4a53-9d1e-3c1f0d9b7a11"
    assert dict(event.parameters) == {}
    assert dict(event.body) == record["body"]
    assert dict(event.properties) == record["properties"]
    assert json.loads(event.raw) == record["body"]
    assert event.dataset_name is None


def test_raw_keeps_the_exact_bytes_received() -> None:
    raw = b'{"routing_key":"clowder.dataset.file.added", "id":"f1","datasetId":"d1",\n'
    raw += b'"filename":"a.bin","msgid":"m1"}'
    assert parse_event(raw).raw == raw


def test_the_body_routing_key_wins_over_the_amqp_routing_key() -> None:
    event = parse_event(encode(body_of("v1_dataset_file_added.json")), routing_key="our.queue")
    assert event.routing_key == "clowder.dataset.file.added"
    assert event.kind is EventKind.FILE_ADDED


def test_the_dataset_files_added_variant_is_a_file_added_event() -> None:
    body = body_of("v1_dataset_file_added.json") | {"routing_key": "clowder.dataset.files.added"}
    assert parse_event(encode(body)).kind is EventKind.FILE_ADDED


def test_a_file_created_event_is_recognised_from_its_mime_routing_key() -> None:
    body = body_of("v1_dataset_file_added.json") | {
        "routing_key": "clowder.file.image.tiff",
        "activity": "created",
        "filename": "x.tif",
    }
    event = parse_event(encode(body))
    assert event.kind is EventKind.FILE_CREATED
    assert event.file is not None
    assert event.file.name == "2017-05-01__10-20-30-123_left.tif"


def test_a_metadata_added_event_on_a_dataset_has_no_file() -> None:
    body = {"routing_key": "clowder.metadata.added.dataset", "id": "d1", "msgid": "m1"}
    event = parse_event(encode(body))
    assert event.kind is EventKind.METADATA_ADDED
    assert event.file is None
    assert event.dataset_id == "d1"


def test_a_metadata_added_event_on_a_file_keeps_the_file() -> None:
    body = {"routing_key": "clowder.metadata.added.file", "id": "f1", "datasetId": "d1"}
    event = parse_event(encode(body))
    assert event.kind is EventKind.METADATA_ADDED
    assert event.file == FileInfo("f1", "", "", None)
    assert event.dataset_id == "d1"


def test_the_file_name_falls_back_to_the_top_level_filename() -> None:
    body = body_of("v1_dataset_file_added.json")
    del body["source"]["extra"]["filename"]
    body["filename"] = "plain.json"
    event = parse_event(encode(body))
    assert event.file is not None
    assert event.file.name == "plain.json"


def test_the_mime_type_is_guessed_from_the_name_when_the_body_has_none() -> None:
    body = body_of("v1_dataset_file_added.json")
    del body["source"]["mimeType"]
    event = parse_event(encode(body))
    assert event.file is not None
    assert event.file.mime_type == "image/tiff"


def test_an_unguessable_mime_type_is_empty() -> None:
    event = load_event_file(FIXTURES / "v2_file_job.json")
    assert event.file is not None
    assert event.file.mime_type == ""


# --- manual submissions ------------------------------------------------------------------------


def test_a_manual_file_submission_keeps_its_object_parameters() -> None:
    event = event_from_record(fixture("v1_manual_file_submission.json"))
    assert event.kind is EventKind.MANUAL_FILE
    assert dict(event.parameters) == {"reason": "re-check"}
    assert event.file is not None
    assert event.file.id == "65a1f0b9e4b0a1b2c3d4e5aa"
    assert event.routing_key == "extractors.ncsa.rulechecker"


def test_a_manual_dataset_submission_decodes_its_string_parameters() -> None:
    event = event_from_record(fixture("v1_manual_dataset_submission.json"))
    assert event.kind is EventKind.MANUAL_DATASET
    assert dict(event.parameters) == {"reason": "re-check"}
    assert event.dataset_id == event.resource_id == "65a1f0a0e4b0a1b2c3d4e500"
    assert event.dataset_name == "RGB GeoTIFFs - 2017-05-01__10-20-30-123"


def test_a_manual_dataset_submission_keeps_the_file_named_in_its_source() -> None:
    event = event_from_record(fixture("v1_manual_dataset_submission.json"))
    assert event.file == FileInfo(
        "65a1f0b9e4b0a1b2c3d4e5aa", "2017-05-01__10-20-30-123_left.tif", "image/tiff", None
    )


def test_a_manual_dataset_submission_without_a_source_file_has_no_file() -> None:
    body = body_of("v1_manual_dataset_submission.json")
    del body["source"]
    assert parse_event(encode(body)).file is None


def test_the_manual_submission_action_alone_marks_a_manual_event() -> None:
    body = body_of("v1_manual_file_submission.json")
    del body["routing_key"]
    assert parse_event(encode(body)).kind is EventKind.MANUAL_FILE


def test_an_extractors_routing_key_alone_marks_a_manual_event() -> None:
    body = body_of("v1_manual_dataset_submission.json")
    del body["action"]
    assert parse_event(encode(body)).kind is EventKind.MANUAL_DATASET


def test_a_manual_file_submission_outside_any_dataset_has_no_dataset() -> None:
    body = body_of("v1_manual_file_submission.json") | {"datasetId": ""}
    event = parse_event(encode(body))
    assert event.kind is EventKind.MANUAL_FILE
    assert event.dataset_id is None


def test_parameters_that_decode_to_something_other_than_an_object_are_refused() -> None:
    body = body_of("v1_manual_dataset_submission.json") | {"parameters": "[1, 2]"}
    assert reason_for(encode(body)) == '"parameters" string holds a JSON array, not an object'


def test_parameters_that_are_not_json_are_refused() -> None:
    body = body_of("v1_manual_dataset_submission.json") | {"parameters": "{oops"}
    assert reason_for(encode(body)).startswith('"parameters" string is not valid JSON: ')


def test_parameters_of_the_wrong_type_are_refused() -> None:
    body = body_of("v1_manual_file_submission.json") | {"parameters": 3}
    assert reason_for(encode(body)) == '"parameters" must be an object, not a JSON number'


# --- legacy v1 and v2 --------------------------------------------------------------------------


def test_a_legacy_body_is_file_added_by_its_amqp_routing_key() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    event = parse_event(encode(body), routing_key=LEGACY_KEY)
    assert event.kind is EventKind.FILE_ADDED
    assert event.routing_key == LEGACY_KEY
    assert event.file is not None
    assert event.file.size == 1_048_576


def test_a_legacy_body_without_any_routing_key_is_read_as_file_added() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    event = parse_event(encode(body))
    assert event.kind is EventKind.FILE_ADDED
    assert event.routing_key == ""


def test_a_legacy_body_whose_id_is_its_dataset_is_not_guessed() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    body["id"] = body["datasetId"]
    assert reason_for(encode(body)).startswith("cannot tell what kind of event this is")


def test_a_legacy_event_without_a_message_id_gets_a_stable_content_hash() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    first = parse_event(encode(body), routing_key=LEGACY_KEY)
    replayed = parse_event(json.dumps(body, indent=2).encode(), routing_key=LEGACY_KEY)
    assert first.message_id == replayed.message_id
    assert first.message_id.startswith("sha256:")
    assert len(first.message_id) == len("sha256:") + 64


def test_the_content_hash_ignores_the_secret_key() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    other_key = body | {"secretKey": "another-key"}
    assert parse_event(encode(body)).message_id == parse_event(encode(other_key)).message_id


def test_the_content_hash_changes_with_the_content() -> None:
    body = body_of("v1_legacy_dataset_file_added.json")
    other_file = body | {"id": "65a1f0b9e4b0a1b2c3d4e5ab"}
    assert parse_event(encode(body)).message_id != parse_event(encode(other_file)).message_id


def test_a_v2_file_job_is_a_file_added_event_keyed_by_its_job_id() -> None:
    event = event_from_record(fixture("v2_file_job.json"))
    assert event.kind is EventKind.FILE_ADDED
    assert event.message_id == "66b2a1f1e4b0a1b2c3d4e5ff"
    assert event.file == FileInfo("66b2a1f0e4b0a1b2c3d4e511", "scan_0001_west.ply", "", 52428800)
    assert event.correlation_id is None


def test_a_v2_dataset_job_is_a_manual_dataset_event_on_its_own_id() -> None:
    body = {
        "host": "https://clowder2.example.org",
        "secretKey": "k",
        "resource_type": "dataset",
        "flags": "",
        "datasetName": "scanner3DTop - 2017-05-01",
        "id": "66b2a1e0e4b0a1b2c3d4e500",
        "datasetId": "66b2a1e0e4b0a1b2c3d4e500",
        "job_id": "66b2a1f1e4b0a1b2c3d4e5fe",
        "parameters": {},
    }
    event = parse_event(encode(body), routing_key="our.listener")
    assert event.kind is EventKind.MANUAL_DATASET
    assert event.dataset_id == "66b2a1e0e4b0a1b2c3d4e500"
    assert event.dataset_name == "scanner3DTop - 2017-05-01"
    assert event.file is None
    assert event.routing_key == "our.listener"


def test_an_unknown_v2_resource_type_is_refused() -> None:
    body = body_of("v2_file_job.json") | {"resource_type": "folder"}
    assert reason_for(encode(body)) == '"resource_type" must be "file" or "dataset", not \'folder\''


def test_a_v2_job_resubmitted_by_pyclowder_with_its_queue_as_routing_key_still_parses() -> None:
    body = body_of("v2_file_job.json") | {"routing_key": "our.listener"}
    assert parse_event(encode(body)).kind is EventKind.FILE_ADDED


# --- refusals ----------------------------------------------------------------------------------


def test_invalid_json_names_the_position() -> None:
    assert reason_for(b"nope") == "body is not valid JSON: Expecting value at line 1 column 1"


def test_an_oversized_body_is_refused_before_parsing() -> None:
    assert reason_for(b" " * 2_000_000) == "body is 2000000 bytes, over the 1048576-byte limit"


def test_the_size_limit_is_adjustable() -> None:
    assert reason_for(b"{}", max_bytes=1) == "body is 2 bytes, over the 1-byte limit"


def test_a_body_that_is_not_utf8_is_refused_with_the_offending_byte() -> None:
    assert reason_for(b'{"a\xff": 1}') == "body is not UTF-8 (byte 0xff at offset 3)"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[]", "a JSON array"),
        (b'"text"', "a JSON string"),
        (b"12", "a JSON number"),
        (b"true", "a JSON boolean"),
        (b"null", "JSON null"),
    ],
)
def test_a_body_that_is_not_an_object_is_refused_naming_its_type(raw: bytes, kind: str) -> None:
    assert reason_for(raw) == f"body is {kind}, not an object"


def test_a_missing_id_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json")
    del body["id"]
    assert reason_for(encode(body)) == 'missing "id"'


def test_an_empty_id_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json") | {"id": ""}
    assert reason_for(encode(body)) == '"id" must not be empty'


def test_an_id_of_the_wrong_type_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json") | {"id": 12}
    assert reason_for(encode(body)) == '"id" must be a string, not int'


def test_a_dataset_id_of_the_wrong_type_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json") | {"datasetId": 5}
    assert reason_for(encode(body)) == '"datasetId" must be a string, not int'


def test_a_file_added_event_without_a_dataset_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json") | {"datasetId": ""}
    assert reason_for(encode(body)).startswith('missing "datasetId"')


def test_a_file_event_without_any_file_name_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json")
    del body["source"]["extra"]["filename"]
    assert reason_for(encode(body)) == (
        'missing file name: neither "source.extra.filename" nor "filename"'
    )


def test_a_nested_field_of_the_wrong_type_is_named_by_its_path() -> None:
    body = body_of("v1_dataset_file_added.json")
    body["source"]["extra"]["filename"] = ["a"]
    assert reason_for(encode(body)) == '"source.extra.filename" must be a string, not array'


def test_a_non_numeric_size_is_refused() -> None:
    body = body_of("v1_dataset_file_added.json") | {"fileSize": "big"}
    assert reason_for(encode(body)) == "\"fileSize\" must be a whole number of bytes, not 'big'"


@pytest.mark.parametrize(("size", "expected"), [("0", 0), (7, 7), (7.0, 7), ("", None)])
def test_sizes_arrive_as_strings_or_numbers(size: Any, expected: int | None) -> None:
    body = body_of("v1_dataset_file_added.json") | {"fileSize": size}
    event = parse_event(encode(body))
    assert event.file is not None
    assert event.file.size == expected


def test_an_unknown_routing_key_is_refused_by_name() -> None:
    body = body_of("v1_dataset_file_added.json") | {"routing_key": "clowder.dataset.file.removed"}
    assert reason_for(encode(body)) == (
        "routing_key 'clowder.dataset.file.removed' is not a Clowder event we handle"
    )


def test_refusals_never_quote_the_secret_key() -> None:
    body = body_of("v1_dataset_file_added.json") | {"secretKey": "TOP-SECRET", "id": 3}
    assert "TOP-SECRET" not in reason_for(encode(body))


def test_deeply_nested_json_is_refused_not_crashed_on() -> None:
    assert reason_for(b"[" * 200_000 + b"]" * 200_000, max_bytes=10**6) in (
        "body is nested too deeply to parse",
        "body is a JSON array, not an object",
    )


def test_an_integer_too_long_to_convert_is_refused() -> None:
    assert reason_for(b'{"id": ' + b"9" * 5000 + b"}").startswith("body is not valid JSON: ")


# --- the event value ---------------------------------------------------------------------------


def test_the_event_is_frozen_and_its_mappings_are_read_only() -> None:
    event = load_event_file(FIXTURES / "v1_dataset_file_added.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.kind = EventKind.MANUAL_FILE  # type: ignore[misc]
    for mapping in (event.body, event.properties, event.parameters):
        with pytest.raises(TypeError):
            mapping["x"] = 1  # type: ignore[index]


def test_the_properties_routing_key_of_a_record_is_the_amqp_routing_key() -> None:
    record = {
        "properties": {"routing_key": LEGACY_KEY},
        "body": body_of("v1_legacy_dataset_file_added.json"),
    }
    assert event_from_record(record).routing_key == LEGACY_KEY


def test_a_records_top_level_routing_key_wins_over_its_properties() -> None:
    record = {
        "properties": {"routing_key": "elsewhere"},
        "routing_key": LEGACY_KEY,
        "body": body_of("v1_legacy_dataset_file_added.json"),
    }
    assert event_from_record(record).routing_key == LEGACY_KEY


def test_a_bare_body_is_accepted_as_a_record() -> None:
    event = event_from_record(body_of("v1_dataset_file_added.json"))
    assert event.kind is EventKind.FILE_ADDED
    assert dict(event.properties) == {}


def test_a_record_whose_properties_are_not_an_object_is_refused() -> None:
    record = {"properties": [], "body": body_of("v1_dataset_file_added.json")}
    with pytest.raises(MalformedEvent, match='record "properties" is a JSON array'):
        event_from_record(record)


def test_a_bad_event_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"id": ')
    with pytest.raises(MalformedEvent) as caught:
        load_event_file(path)
    assert caught.value.reason.startswith(f"{path}: body is not valid JSON: ")


def test_a_missing_event_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(MalformedEvent, match=r"absent\.json: cannot read"):
        load_event_file(path)


def test_an_event_file_may_hold_a_raw_body(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    raw = json.dumps(body_of("v1_dataset_file_added.json"), indent=1).encode()
    path.write_bytes(raw)
    event = load_event_file(path)
    assert event.raw == raw
    assert event.kind is EventKind.FILE_ADDED


def test_an_oversized_event_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(json.dumps(fixture("v1_dataset_file_added.json")).encode())
    with pytest.raises(MalformedEvent) as caught:
        load_event_file(path, max_bytes=100)
    assert caught.value.reason == f"{path}: input is over the 100-byte limit"


def test_event_json_reads_a_record_or_a_raw_body_alike() -> None:
    record = fixture("v1_manual_file_submission.json")
    from_record = event_from_json(json.dumps(record).encode())
    from_body = event_from_json(json.dumps(record["body"]).encode())
    assert from_record.reply_to == "clowder.a1b2c3d4e5"
    assert from_body.reply_to is None
    assert from_record.message_id == from_body.message_id
    assert from_record.parameters == from_body.parameters == {"reason": "re-check"}


# --- properties: never anything but an Event or MalformedEvent ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

FIXTURE_BODIES = [body_of(name) for name in sorted(p.name for p in FIXTURES.glob("*.json"))]
AMQP_KEYS = st.sampled_from(["", LEGACY_KEY, "our.queue", "extractors.x", "clowder.file.text"])
PROPERTY_TESTS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def parsed_or_refused(parse: Callable[[], Event]) -> Event | None:
    """Run `parse`: its Event, or None when it refused with a reason; any other outcome fails."""
    try:
        event = parse()
    except MalformedEvent as exc:
        assert exc.reason
        return None
    assert isinstance(event, Event)
    return event


def parse_or_refuse(raw: bytes, routing_key: str = "") -> Event | None:
    """Parse, accepting only the two allowed outcomes; check invariants of a parsed Event."""
    try:
        event = parse_event(raw, {"reply_to": "r"}, routing_key=routing_key)
    except MalformedEvent as exc:
        assert isinstance(exc.reason, str)
        assert exc.reason
        return None
    assert isinstance(event.kind, EventKind)
    assert isinstance(event.message_id, str)
    assert event.message_id
    assert isinstance(event.resource_id, str)
    assert event.resource_id
    assert event.dataset_id is None or (isinstance(event.dataset_id, str) and event.dataset_id)
    assert event.file is None or isinstance(event.file.id, str)
    assert event.file is None or event.file.size is None or isinstance(event.file.size, int)
    assert isinstance(dict(event.parameters), dict)
    assert event.raw == raw
    return event


@given(st.binary(max_size=300))
@PROPERTY_TESTS
def test_arbitrary_bytes_either_parse_or_are_refused(raw: bytes) -> None:
    parse_or_refuse(raw)


@given(json_values, AMQP_KEYS)
@PROPERTY_TESTS
def test_arbitrary_json_values_either_parse_or_are_refused(value: Any, key: str) -> None:
    parse_or_refuse(json.dumps(value).encode(), key)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8), AMQP_KEYS)
@PROPERTY_TESTS
def test_arbitrary_json_objects_either_parse_or_are_refused(value: Any, key: str) -> None:
    parse_or_refuse(json.dumps(value).encode(), key)


@st.composite
def mutated_fixture_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A fixture body with a few keys dropped or their values replaced, at any depth."""
    body = copy.deepcopy(draw(st.sampled_from(FIXTURE_BODIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        target: dict[str, Any] = body
        while True:
            if not target:
                break
            key = draw(st.sampled_from(sorted(target)))
            child = target[key]
            if isinstance(child, dict) and child and draw(st.booleans()):
                target = child
                continue
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(json_values)
            break
    return body


@given(mutated_fixture_bodies(), AMQP_KEYS)
@PROPERTY_TESTS
def test_mutated_fixture_bodies_either_parse_or_are_refused(body: Any, key: str) -> None:
    parse_or_refuse(json.dumps(body).encode(), key)


@given(mutated_fixture_bodies(), AMQP_KEYS)
@PROPERTY_TESTS
def test_mutated_records_either_parse_or_are_refused(body: Any, key: str) -> None:
    try:
        event = event_from_record({"properties": {}, "routing_key": key, "body": body})
    except MalformedEvent:
        return
    assert isinstance(event, Event)


# Python values a caller might hand over: any key type, tuples, sets and bytes included.
python_keys = (
    st.text(max_size=10) | st.integers() | st.none() | st.booleans() | st.tuples(st.integers())
)
python_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(python_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.sampled_from(FIXTURE_BODIES), python_values, python_values)
@PROPERTY_TESTS
def test_any_properties_and_routing_key_either_parse_or_are_refused(
    body: Any, properties: Any, routing_key: Any
) -> None:
    raw = encode(body)
    event = parsed_or_refused(lambda: parse_event(raw, properties, routing_key=routing_key))
    if event is None:
        return
    assert event.reply_to is None or isinstance(event.reply_to, str)
    assert event.correlation_id is None or isinstance(event.correlation_id, str)


@given(python_values)
@PROPERTY_TESTS
def test_any_value_handed_over_as_a_body_is_refused_unless_it_is_bytes(value: Any) -> None:
    try:
        parse_event(value)
    except MalformedEvent:
        return
    assert isinstance(value, bytes)


@given(
    st.dictionaries(python_keys, python_values, max_size=6)
    | st.fixed_dictionaries(
        {"properties": python_values, "routing_key": python_values, "body": python_values}
    )
)
@PROPERTY_TESTS
def test_any_python_record_either_parses_or_is_refused(record: Any) -> None:
    parsed_or_refused(lambda: event_from_record(record))


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@PROPERTY_TESTS
def test_any_event_file_content_either_parses_or_is_refused(raw: bytes) -> None:
    parsed_or_refused(lambda: event_from_json(raw))
