"""Tests that extractor_message builds bodies pyclowder 3.0.8 turns into the intended resource."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.events import event_from_record, parse_event
from switchboard.jobids import job_id
from switchboard.model import Event, EventKind, Submission
from switchboard.outgoing import RULE_HEADER, extractor_message

FIXTURES = Path(__file__).parent / "fixtures"
EVENT_FIXTURES = [
    "v1_dataset_file_added.json",
    "v1_legacy_dataset_file_added.json",
    "v1_manual_file_submission.json",
    "v1_manual_dataset_submission.json",
    "v2_file_job.json",
]


def pyclowder_build_resource(
    body: dict[str, Any],
    extractor_name: str,
    extractor_info: dict[str, Any],
    dataset_files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """pyclowder 3.0.8 `Connector._build_resource`'s choice of resource (protocol.md §3).

    The decision is copied from pyclowder 3.0.8 `connectors.py`; its two REST calls for a
    dataset (`get_info`, `get_file_list`) are replaced by `dataset_files`, the list Clowder
    would answer for `datasetId`. `triggering_file` is, as there, the `filename` of the listed
    file whose `id` is the body's `id` (None when no listed file has that id).
    """
    fileid = body.get("id", "")
    intermediatefileid = body.get("intermediateId", "")
    datasetid = body.get("datasetId", "")
    filename = body.get("filename", "")
    resource_type = "file"
    message_type = body["routing_key"]
    if message_type.find(".dataset.") > -1:
        resource_type = "dataset"
    elif message_type.find(".file.") > -1:
        resource_type = "file"
    elif message_type.find("metadata.added") > -1:
        resource_type = "metadata"
    elif message_type in ("extractors." + extractor_name, "extractors." + extractor_info["name"]):
        resource_type = "dataset" if datasetid == fileid else "file"
    elif message_type.endswith(extractor_info["name"]) or message_type.endswith(extractor_name):
        for key in extractor_info["process"]:
            resource_type = "dataset" if key == "dataset" else "file"
    if resource_type == "dataset":
        filelist = list(dataset_files or [])
        triggering_file = None
        for f in filelist:
            if f["id"] == fileid:
                triggering_file = f["filename"]
                break
        return {
            "type": "dataset",
            "id": datasetid,
            "files": filelist,
            "triggering_file": triggering_file,
            "parent": {},
        }
    if resource_type == "file":
        return {
            "type": "file",
            "id": fileid,
            "intermediate_id": intermediatefileid,
            "name": filename,
            "file_ext": os.path.splitext(filename)[1],
            "parent": {"type": "dataset", "id": datasetid},
        }
    return {"type": "metadata"}


def dataset_files_of(event: Event) -> list[dict[str, Any]]:
    """What Clowder lists for the event's dataset: its file plus another one."""
    files = [{"id": "65a1f0b9e4b0a1b2c3d4ffff", "filename": "other_right.tif"}]
    if event.file is not None:
        files.insert(0, {"id": event.file.id, "filename": event.file.name})
    return files


def pyclowder_job_id(body: dict[str, Any]) -> str | None:
    """How pyclowder's `on_message` reads the job id: `jobid` first, then `job_id`."""
    return body.get("jobid", body.get("job_id"))


def load_event(name: str) -> Event:
    return event_from_record(json.loads((FIXTURES / name).read_text()))


def submission_for(
    event: Event,
    resource_type: str,
    resource_id: str,
    extractor: str = "terra.geotiff.fieldmosaic",
    parameters: dict | None = None,
) -> Submission:
    return Submission(
        job_id=job_id("rule-a", extractor, resource_type, resource_id),
        rule="rule-a",
        extractor=extractor,
        resource_type=resource_type,  # type: ignore[arg-type]
        resource_id=resource_id,
        via="amqp",
        parameters=parameters or {"output_dataset": "Full Field - 2017-05-01"},
        event_message_id=event.message_id,
    )


def info(name: str) -> dict[str, Any]:
    return {"name": name, "process": {"dataset": ["file.added"]}}


@pytest.mark.parametrize("fixture", EVENT_FIXTURES)
def test_dataset_submission_makes_pyclowder_build_that_dataset(fixture):
    event = load_event(fixture)
    dataset_id = event.dataset_id
    assert dataset_id
    submission = submission_for(event, "dataset", dataset_id)
    body, _ = extractor_message(event, submission)
    resource = pyclowder_build_resource(
        body, submission.extractor, info(submission.extractor), dataset_files_of(event)
    )
    assert resource["type"] == "dataset"
    assert resource["id"] == dataset_id


@pytest.mark.parametrize("fixture", [f for f in EVENT_FIXTURES if "dataset_submission" not in f])
def test_a_dataset_submission_caused_by_a_file_reaches_pyclowder_with_its_triggering_file(
    fixture,
):
    event = load_event(fixture)
    assert event.file is not None and event.dataset_id
    submission = submission_for(event, "dataset", event.dataset_id)
    body, _ = extractor_message(event, submission)
    resource = pyclowder_build_resource(
        body, submission.extractor, info(submission.extractor), dataset_files_of(event)
    )
    assert (resource["type"], resource["id"]) == ("dataset", event.dataset_id)
    assert resource["triggering_file"] == event.file.name
    assert body["routing_key"] == "clowder.dataset.file.added"
    assert body["id"] == body["intermediateId"] == event.file.id


def test_a_manual_dataset_submission_stays_a_dataset_message_without_triggering_file():
    event = load_event("v1_manual_dataset_submission.json")
    submission = submission_for(event, "dataset", event.dataset_id or "")
    body, _ = extractor_message(event, submission)
    resource = pyclowder_build_resource(
        body, submission.extractor, info(submission.extractor), dataset_files_of(event)
    )
    assert (resource["type"], resource["id"]) == ("dataset", event.dataset_id)
    assert resource["triggering_file"] is None
    assert body["routing_key"] == "extractors.terra.geotiff.fieldmosaic"
    assert body["id"] == body["datasetId"] == event.dataset_id


def test_a_dataset_submission_without_a_file_keeps_id_equal_to_the_dataset_id():
    event = dataclasses.replace(load_event("v1_dataset_file_added.json"), file=None)
    submission = submission_for(event, "dataset", event.dataset_id or "")
    body, _ = extractor_message(event, submission)
    resource = pyclowder_build_resource(body, submission.extractor, info(submission.extractor))
    assert (resource["type"], resource["id"]) == ("dataset", event.dataset_id)
    assert resource["triggering_file"] is None
    assert body["routing_key"] == "extractors.terra.geotiff.fieldmosaic"
    assert body["id"] == body["datasetId"]


def test_a_submission_for_another_dataset_names_no_triggering_file_of_this_one():
    event = load_event("v1_dataset_file_added.json")
    other = "65a1f0a0e4b0a1b2c3d4e5ff"
    body, _ = extractor_message(event, submission_for(event, "dataset", other))
    resource = pyclowder_build_resource(body, "terra.geotiff.fieldmosaic", info("x"))
    assert (resource["type"], resource["id"], resource["triggering_file"]) == (
        "dataset",
        other,
        None,
    )
    assert body["id"] == other


@pytest.mark.parametrize("fixture", [f for f in EVENT_FIXTURES if "dataset_submission" not in f])
def test_file_submission_makes_pyclowder_build_that_file_with_its_name(fixture):
    event = load_event(fixture)
    assert event.file is not None
    submission = submission_for(event, "file", event.file.id, extractor="ncsa.image.preview")
    body, _ = extractor_message(event, submission)
    resource = pyclowder_build_resource(body, submission.extractor, info(submission.extractor))
    assert resource["type"] == "file"
    assert resource["id"] == event.file.id
    assert resource["intermediate_id"] == event.file.id
    assert resource["name"] == event.file.name
    assert resource["parent"] == {"type": "dataset", "id": event.dataset_id}


def test_a_dataset_event_without_filename_gets_the_name_from_source():
    event = load_event("v1_dataset_file_added.json")
    assert "filename" not in event.body
    body, _ = extractor_message(event, submission_for(event, "file", event.resource_id))
    assert body["filename"] == "2017-05-01__10-20-30-123_left.tif"


def test_a_file_other_than_the_events_gets_no_misleading_name():
    event = load_event("v1_manual_file_submission.json")
    other = "65a1f0b9e4b0a1b2c3d4eeee"
    body, _ = extractor_message(event, submission_for(event, "file", other))
    assert body["id"] == other
    assert body["filename"] == ""


@pytest.mark.parametrize("fixture", EVENT_FIXTURES)
def test_our_job_id_replaces_clowders_and_clowders_is_kept_aside(fixture):
    event = load_event(fixture)
    incoming = event.body.get("jobid") or event.body.get("job_id")
    submission = submission_for(event, "dataset", event.dataset_id or "")
    body, properties = extractor_message(event, submission)
    assert body["jobid"] == body["job_id"] == submission.job_id
    assert pyclowder_job_id(body) == submission.job_id
    assert properties["message_id"] == submission.job_id
    if incoming:
        assert body["clowder_jobid"] == incoming
        assert incoming not in (body["jobid"], body["job_id"])
    else:
        assert "clowder_jobid" not in body


def test_body_keeps_what_pyclowder_reads_and_adds_rulechecked_and_parameters():
    event = load_event("v1_dataset_file_added.json")
    submission = submission_for(event, "dataset", event.dataset_id or "", parameters={"k": [1, 2]})
    body, _ = extractor_message(event, submission)
    for key in ("host", "secretKey", "notifies", "flags", "msgid", "source", "fileSize"):
        assert body[key] == event.body[key]
    assert body["rulechecked"] is True
    assert body["parameters"] == {"k": [1, 2]}
    assert body["routing_key"] == "clowder.dataset.file.added"  # caused by a file: §4.3
    json.dumps(body)  # it must be publishable as JSON


def test_the_event_body_is_not_changed():
    event = load_event("v1_manual_dataset_submission.json")
    before = json.dumps(dict(event.body), sort_keys=True)
    extractor_message(event, submission_for(event, "dataset", event.dataset_id or ""))
    assert json.dumps(dict(event.body), sort_keys=True) == before


def test_properties_are_persistent_json_with_the_incoming_reply_to_and_correlation_id():
    event = load_event("v1_dataset_file_added.json")
    submission = submission_for(event, "dataset", event.dataset_id or "")
    _, properties = extractor_message(event, submission)
    assert properties == {
        "content_type": "application/json",
        "delivery_mode": 2,
        "message_id": submission.job_id,
        "correlation_id": "0b6f1c8e-2f4e-4a53-9d1e-3c1f0d9b7a11",
        "reply_to": "clowder.a1b2c3d4e5",
        "headers": {RULE_HEADER: "rule-a"},
    }


def test_an_event_without_correlation_id_gets_a_fresh_one():
    event = load_event("v2_file_job.json")
    assert event.correlation_id is None
    _, properties = extractor_message(event, submission_for(event, "dataset", "ds"))
    assert uuid.UUID(properties["correlation_id"])
    assert properties["reply_to"] == "clowder.k3j4h5g6f7"


def test_v2_bodies_stay_self_consistent():
    event = load_event("v2_file_job.json")
    body, _ = extractor_message(event, submission_for(event, "dataset", event.dataset_id or ""))
    assert body["resource_type"] == "dataset"
    assert body["retry_count"] == 0


@pytest.mark.parametrize(
    ("fixture", "resource_type", "kind"),
    [
        ("v1_dataset_file_added.json", "dataset", EventKind.FILE_ADDED),
        ("v1_manual_dataset_submission.json", "dataset", EventKind.MANUAL_DATASET),
        ("v1_dataset_file_added.json", "file", EventKind.MANUAL_FILE),
    ],
)
def test_switchboard_reads_its_own_messages_as_the_event_they_describe(
    fixture, resource_type, kind
):
    event = load_event(fixture)
    resource_id = event.dataset_id if resource_type == "dataset" else event.resource_id
    body, properties = extractor_message(event, submission_for(event, resource_type, resource_id))
    again = parse_event(json.dumps(body).encode(), properties)
    assert again.kind is kind
    assert again.message_id == body["msgid"]  # the dedup ledger knows it already


ids = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)
names = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,3}", fullmatch=True) | st.lists(
    st.sampled_from(["ncsa", "file", "dataset", "metadata", "added", "terra"]),
    min_size=1,
    max_size=5,
).map(".".join)


@pytest.mark.parametrize("extractor", ["ncsa.file.digest", "x.metadata.added.y", "terra.dataset.z"])
@pytest.mark.parametrize("resource_type", ["dataset", "file"])
def test_extractor_names_pyclowder_would_misread_still_get_the_right_resource(
    extractor, resource_type
):
    event = load_event("v1_dataset_file_added.json")
    resource_id = event.dataset_id if resource_type == "dataset" else event.resource_id
    body, _ = extractor_message(event, submission_for(event, resource_type, resource_id, extractor))
    resource = pyclowder_build_resource(body, extractor, info(extractor), dataset_files_of(event))
    assert (resource["type"], resource["id"]) == (resource_type, resource_id)
    if resource_type == "dataset":
        assert resource["triggering_file"] == event.file.name


@given(
    dataset_id=ids, file_id=ids, extractor=names, resource_type=st.sampled_from(["dataset", "file"])
)
def test_pyclowder_always_builds_the_requested_resource(
    dataset_id, file_id, extractor, resource_type
):
    if dataset_id == file_id:
        return
    record = json.loads((FIXTURES / "v1_dataset_file_added.json").read_text())
    record["body"].update(id=file_id, intermediateId=file_id, datasetId=dataset_id)
    record["body"]["source"]["id"]["id"] = file_id
    event = event_from_record(record)
    resource_id = dataset_id if resource_type == "dataset" else file_id
    submission = submission_for(event, resource_type, resource_id, extractor=extractor)
    body, _ = extractor_message(event, submission)
    files = [{"id": file_id, "filename": "f.tif"}]
    resource = pyclowder_build_resource(body, extractor, info(extractor), files)
    assert (resource["type"], resource["id"]) == (resource_type, resource_id)
    if resource_type == "dataset":
        assert resource["triggering_file"] == "f.tif"
