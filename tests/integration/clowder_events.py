"""Clowder v1 `dataset.file.added` events for daemon tests, numbered so each is distinct."""

from __future__ import annotations

import json
from typing import Any

from switchboard.jobids import job_id

DATASET = "65a1f0a0e4b0a1b2c3d4e500"
REPLY_TO = "clowder.a1b2c3d4e5"
RULES_YAML = """\
- name: tif-to-ext
  on: dataset.file.added
  when:
    file.name: {{suffix: ".tif"}}
  submit:
    extractor: {extractor}
    resource: file
    via: {via}
    parameters: {{mode: fast}}
"""


def file_id(n: int) -> str:
    return f"{n:024x}"


def file_added(
    n: int,
    *,
    name: str | None = None,
    dataset: str = DATASET,
    host: str = "https://clowder.example.org",
    secret_key: str = "REDACTED-API-KEY",
) -> dict[str, Any]:
    """The body Clowder v1 sends when file `n` is added to `dataset` (protocol.md §2.1)."""
    fid = file_id(n)
    return {
        "notifies": [],
        "msgid": f"msg-{n:08d}",
        "id": fid,
        "jobid": f"clowder-job-{n}",
        "intermediateId": fid,
        "fileSize": "1048576",
        "host": host,
        "datasetId": dataset,
        "flags": "",
        "secretKey": secret_key,
        "routing_key": "clowder.dataset.file.added",
        "source": {
            "id": {"resourceType": "'file", "id": fid},
            "mimeType": "image/tiff",
            "extra": {"filename": name or f"plot-{n:05d}_left.tif"},
        },
        "activity": "added",
        "target": {"id": {"resourceType": "'dataset", "id": dataset}, "extra": {}},
    }


def properties(n: int) -> dict[str, Any]:
    """Clowder's AMQP properties for event `n` (§2.3)."""
    return {
        "content_type": "application/json",
        "correlation_id": f"corr-{n}",
        "reply_to": REPLY_TO,
        "delivery_mode": 2,
    }


def record(n: int, **kwargs: Any) -> dict[str, Any]:
    """A fixture-style `{properties, body}` record for `ListSource`."""
    return {"properties": properties(n), "body": file_added(n, **kwargs)}


def encoded(n: int, **kwargs: Any) -> bytes:
    return json.dumps(file_added(n, **kwargs)).encode("utf-8")


def expected_job(n: int, extractor: str) -> str:
    """The job id the `tif-to-ext` rule gives file `n`."""
    return job_id("tif-to-ext", extractor, "file", file_id(n))
