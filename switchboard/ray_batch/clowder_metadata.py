"""Posts each member's result to Clowder as file metadata (opt-in `post_metadata`), stdlib only.

Runs in the job on the cluster, with the job's key, the way pyclowder's `upload_metadata` does:
Clowder v1 `POST /api/files/{id}/metadata.jsonld` (JSON-LD with the extractor as agent),
clowder2 `POST /api/v2/files/{id}/metadata`. A post that fails costs that member's metadata,
never the job: it is counted and logged without the key.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .spec import ClowderTarget

log = logging.getLogger(__name__)
CONTEXT = "https://clowder.ncsa.illinois.edu/contexts/metadata.jsonld"
TIMEOUT_S = 30.0


def metadata_request(
    target: ClowderTarget, file_id: str, content: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of one member's metadata post (no key in either)."""
    base = target.url.rstrip("/") + "/"
    quoted = urllib.parse.quote(file_id, safe="")
    if target.api_version == 2:
        return f"{base}api/v2/files/{quoted}/metadata", {
            "content": dict(content),
            "listener": {"name": target.extractor, "version": "switchboard-batch"},
        }
    agent = f"{base}api/extractors/{urllib.parse.quote(target.extractor, safe='')}"
    return f"{base}api/files/{quoted}/metadata.jsonld", {
        "@context": [CONTEXT, {key: f"{agent}#{key}" for key in content}],
        "attachedTo": {"resourceType": "file", "id": file_id},
        "agent": {"@type": "cat:extractor", "extractor_id": agent},
        "content": dict(content),
    }


def _post(url: str, body: Mapping[str, Any], key: str) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "X-API-KEY": key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        answer.read()


class MetadataPoster:
    """Posts results of successful members; `posted` and `failed` count what happened."""

    def __init__(
        self,
        target: ClowderTarget,
        post: Callable[[str, Mapping[str, Any], str], None] = _post,
    ) -> None:
        self.target = target
        self._post = post
        self.posted = 0
        self.failed = 0

    def post_records(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if not record.get("ok"):
                continue
            url, body = metadata_request(self.target, str(record["member"]), record["result"])
            try:
                self._post(url, body, self.target.key)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.failed += 1
                log.warning("metadata of %s not posted: %s", record["member"], _without_key(exc))
            else:
                self.posted += 1

    def __repr__(self) -> str:
        return f"MetadataPoster({self.target!r})"


def _without_key(exc: Exception) -> str:
    """The error, short; the key travels in a header, never in the URL, so it is not in it."""
    return f"{type(exc).__name__}: {exc}"[:300]
