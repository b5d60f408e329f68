"""Builds the message a pyclowder extractor receives for one submission (protocol.md §3, §4.3)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .model import Event, EventKind, Submission

RULE_HEADER = "x-switchboard-rule"
DATASET_EVENT_KEY = "clowder.dataset.file.added"  # pyclowder: `.dataset.` -> a dataset resource
_INCOMING_JOB_KEYS = ("jobid", "job_id")


def extractor_message(
    event: Event, submission: Submission
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (body, properties) to publish to `submission.extractor` for `event`.

    The body is the event's own body, so pyclowder still finds `host`, `secretKey`,
    `notifies` and `flags`, plus `rulechecked: true` (TERRA extractors skip their own checks
    on it), the rule's `parameters`, and our job id as both `jobid` and `job_id`. Clowder's job
    id for the incoming event is kept as `clowder_jobid`. `routing_key`, `id` and `datasetId`
    are set so that pyclowder 3.0.8's `_build_resource` picks the resource the rule asked for
    (protocol.md §3, §4.3):

    - a dataset submission caused by a file of that dataset keeps `id` = the triggering file
      under the dataset key `clowder.dataset.file.added`, so pyclowder builds the dataset
      resource *with* `triggering_file` (dataset extractors test it in `check_message`);
    - any other dataset submission (manual dataset submissions, firings without a file) is
      `extractors.<extractor>` with `id == datasetId`;
    - a file submission is `extractors.<extractor>` with `id` = the file.

    The body and properties are the same for every via; a sink's own options (a Ray
    entrypoint) are the submission's `options`, kept in an outbox column of their own.
    """
    body: dict[str, Any] = dict(event.body)
    incoming_job = next((body[k] for k in _INCOMING_JOB_KEYS if body.get(k)), None)
    for key in _INCOMING_JOB_KEYS:
        body.pop(key, None)
    if incoming_job is not None:
        body["clowder_jobid"] = incoming_job
    body["rulechecked"] = True
    body["parameters"] = dict(submission.parameters)
    body["jobid"] = submission.job_id
    body["job_id"] = submission.job_id
    trigger = triggering_file_id(event, submission)
    body["routing_key"] = (
        DATASET_EVENT_KEY
        if trigger is not None
        else routing_key_for(submission.extractor, submission.resource_type, event)
    )
    if "retry_count" in body:
        body["retry_count"] = 0  # a new job starts with all of pyclowder's retries
    if "resource_type" in body:
        body["resource_type"] = submission.resource_type  # keep v2 bodies self-consistent
    if submission.resource_type == "dataset":
        _address_dataset(body, submission.resource_id, trigger)
    else:
        _address_file(body, event, submission.resource_id)
    return body, _properties(event, submission)


def triggering_file_id(event: Event, submission: Submission) -> str | None:
    """The file that caused a dataset submission, or None (file submission, no file, manual).

    Only a file of the submitted dataset counts: pyclowder looks the id up in that dataset's
    file list to fill `triggering_file`. A manual dataset submission names no file of its own
    (its `source` is whatever Clowder put there), so it stays a plain dataset submission.
    """
    if submission.resource_type != "dataset" or event.kind is EventKind.MANUAL_DATASET:
        return None
    file = event.file
    if file is None or not file.id or file.id == submission.resource_id:
        return None
    if event.dataset_id != submission.resource_id:
        return None
    return file.id


def routing_key_for(extractor: str, resource_type: str, event: Event) -> str:
    """`extractors.<extractor>`, unless pyclowder would misread that key for this extractor.

    pyclowder tests the key for `.dataset.`, `.file.` and `metadata.added` before it looks for
    `extractors.<name>`, so an extractor named like `ncsa.file.digest` would always get a file.
    For such names a Clowder event key that selects the wanted resource type is used instead.
    """
    key = f"extractors.{extractor}"
    if resource_type == "dataset":
        if ".dataset." in key or (".file." not in key and "metadata.added" not in key):
            return key
        return DATASET_EVENT_KEY
    if ".dataset." not in key and ("metadata.added" not in key or ".file." in key):
        return key
    mime = event.file.mime_type if event.file is not None and event.file.mime_type else ""
    return "clowder.file." + (mime.replace(".", "_").replace("/", ".") or "unknown")


def _address_dataset(body: dict[str, Any], dataset_id: str, trigger: str | None) -> None:
    body["id"] = trigger or dataset_id
    body["intermediateId"] = trigger or dataset_id
    body["datasetId"] = dataset_id


def _address_file(body: dict[str, Any], event: Event, file_id: str) -> None:
    if body.get("datasetId") == file_id:
        raise ValueError(f"file {file_id} cannot be its own dataset: pyclowder would see a dataset")
    body["id"] = file_id
    body["intermediateId"] = file_id
    body.setdefault("datasetId", event.dataset_id or "")
    if event.file is not None and event.file.id == file_id:
        body["filename"] = body.get("filename") or event.file.name or _source_filename(body)
    elif file_id != event.resource_id:
        body["filename"] = ""  # the event's file name would describe a different file
    else:
        body.setdefault("filename", "")


def _source_filename(body: Mapping[str, Any]) -> str:
    source = body.get("source")
    extra = source.get("extra") if isinstance(source, Mapping) else None
    name = extra.get("filename") if isinstance(extra, Mapping) else None
    return name if isinstance(name, str) else ""


def _properties(event: Event, submission: Submission) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "content_type": "application/json",
        "delivery_mode": 2,
        "message_id": submission.job_id,
        "correlation_id": event.correlation_id or str(uuid.uuid4()),
        "headers": {RULE_HEADER: submission.rule},
    }
    if event.reply_to:
        properties["reply_to"] = event.reply_to
    return properties
