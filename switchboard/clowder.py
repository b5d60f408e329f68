"""A small Clowder REST client: dataset lookups and extraction requests, with retries.

Uses only the standard library (urllib). Clowder v1 takes the API key as `?key=` in the query
string, so every message this module produces is scrubbed of it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from .errors import ClowderRejected, ClowderUnavailable
from .secrets import replace_secrets

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_EXCERPT_CHARS = 200
# 4xx answers that mean "not now" rather than "never": 409 while a file is not yet PROCESSED
# (protocol.md §4.2), 429 when throttled. Retried like 5xx, then ClowderUnavailable.
RETRYABLE_4XX = frozenset({409, 429})
_RESOURCE_PATHS = {"file": "files", "dataset": "datasets"}


class ClowderClient:
    """Talks to one Clowder instance (v1 by default; `api_version=2` for clowder2).

    Timeouts, connection failures and 5xx answers are retried `retries` times with exponential
    backoff starting at `backoff_s`, then raise ClowderUnavailable. A 4xx answer raises
    ClowderRejected at once (its `status` attribute holds the HTTP status).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        *,
        api_version: Literal[1, 2] = 1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if api_version not in (1, 2):
            raise ValueError(f"api_version must be 1 or 2, not {api_version!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.api_version = api_version
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ClowderClient({self.base_url!r}, api_version={self.api_version})"

    # --- API -----------------------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's JSON description (`GET /api/datasets/{id}`)."""
        path = f"{self._api()}/datasets/{_segment(dataset_id)}"
        answer = self._request("GET", path)
        if not isinstance(answer, dict):
            raise ClowderRejected(f"GET {path}: answer is not a JSON object")
        return answer

    def dataset_name(self, dataset_id: str) -> str:
        """The dataset's name; ClowderRejected if Clowder does not know the dataset."""
        info = self.dataset(dataset_id)
        name = info.get("name")
        if not isinstance(name, str):
            raise ClowderRejected(f"dataset {dataset_id}: answer has no name")
        return name

    def submit_extraction(
        self,
        resource_type: str,
        resource_id: str,
        extractor: str,
        parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask Clowder to send `resource_id` to `extractor`; returns Clowder's JSON answer.

        v1: `POST /api/{files|datasets}/{id}/extractions` with `{"extractor", "parameters"}`,
        answering `{"status": "OK", "job_id": …}`.
        v2: `POST /api/v2/{files|datasets}/{id}/extract?extractorName=…` with the parameters,
        answering the job id as a JSON string, given back as `{"job_id": …}`.
        An answer without JSON becomes `{"status": <http status>}`. `clowder_job_id` reads the
        job id out of either.
        """
        if resource_type not in _RESOURCE_PATHS:
            raise ValueError(f"resource_type must be 'file' or 'dataset', not {resource_type!r}")
        collection = _RESOURCE_PATHS[resource_type]
        params = dict(parameters or {})
        if self.api_version == 1:
            path = f"/api/{collection}/{_segment(resource_id)}/extractions"
            payload: dict[str, Any] = {"extractor": extractor, "parameters": params}
            query: dict[str, str] = {}
        else:
            path = f"/api/v2/{collection}/{_segment(resource_id)}/extract"
            payload = params
            query = {"extractorName": extractor}
        answer = self._request("POST", path, payload, query)
        if isinstance(answer, dict):
            return answer
        if isinstance(answer, str):
            return {"job_id": answer}
        return {"status": answer}

    def job_summary(self, job_id: str) -> dict[str, Any]:
        """Clowder v2's record of a job (`GET /api/v2/jobs/{id}/summary`): `status`,
        `latest_message`, `created`, `started`, `updated`, `finished`; ClowderRejected (its
        `status` 404) for a job Clowder does not know."""
        if self.api_version != 2:
            raise ValueError("job summaries are Clowder v2's (api_version=2)")
        path = f"/api/v2/jobs/{_segment(job_id)}/summary"
        answer = self._request("GET", path)
        if not isinstance(answer, dict):
            raise ClowderRejected(f"GET {path}: answer is not a JSON object")
        return answer

    # --- HTTP ----------------------------------------------------------------------------------

    def _api(self) -> str:
        return "/api" if self.api_version == 1 else "/api/v2"

    def _request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        """Send with retries; returns the parsed JSON answer (or the status if not JSON)."""
        attempts = self.retries + 1
        last_problem = ""
        answered = False
        for attempt in range(attempts):
            if attempt:
                delay_s = self.backoff_s * 2 ** (attempt - 1)
                log.info("retrying %s %s in %.2f s after %s", method, path, delay_s, last_problem)
                self._sleep(delay_s)
            try:
                return self._once(method, path, payload, query)
            except _Retryable as exc:
                last_problem = str(exc)
                answered = answered or exc.answered
        error = ClowderUnavailable if answered else ClowderUnreachable
        raise error(f"{method} {path}: {last_problem} (gave up after {attempts} attempts)")

    def _once(self, method: str, path: str, payload: Any, query: Mapping[str, str] | None) -> Any:
        request = self._build(method, path, payload, query)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status = response.status
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            excerpt = self._excerpt(_read_quietly(exc))
            exc.close()
            if status >= 500 or status in RETRYABLE_4XX:
                raise _Retryable(f"HTTP {status} {excerpt}".rstrip(), answered=True) from None
            error = ClowderRejected(f"{method} {path}: HTTP {status} {excerpt}".rstrip())
            error.status = status  # type: ignore[attr-defined]
            raise error from None
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(self._scrub(_why(exc))) from None
        if not raw.strip():
            return status
        try:
            return json.loads(raw)
        except ValueError:
            if method == "GET":
                raise ClowderRejected(
                    f"{method} {path}: HTTP {status} answer is not JSON: {self._excerpt(raw)}"
                ) from None
            return status

    def _build(
        self, method: str, path: str, payload: Any, query: Mapping[str, str] | None
    ) -> urllib.request.Request:
        params = dict(query or {})
        headers = {"Accept": "application/json"}
        if self.api_version == 1:
            params["key"] = self._api_key
        else:
            headers["X-API-KEY"] = self._api_key
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _excerpt(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace").strip().replace("\n", " ")
        if len(text) > MAX_EXCERPT_CHARS:
            text = text[: MAX_EXCERPT_CHARS - 3] + "..."
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        """Remove the API key (raw and URL-encoded) from text headed for an error or log."""
        return replace_secrets(text, [self._api_key])

    # --- dataset file list (legacy rules' file paths) --------------------------------------------

    def dataset_files(self, dataset_id: str) -> list[dict[str, Any]]:
        """The dataset's files as Clowder lists them (`GET /api/datasets/{id}/files`).

        pyclowder builds a dataset resource's `files` from this list. Clowder v1 includes each
        file's path on disk as `filepath` only for files in its disk storage and only when the
        key is a server admin's (`app/api/Datasets.scala`, `jsonFile`).
        """
        path = f"{self._api()}/datasets/{_segment(dataset_id)}/files"
        answer = self._request("GET", path)
        if not isinstance(answer, list):
            raise ClowderRejected(f"GET {path}: answer is not a JSON list")
        return [f for f in answer if isinstance(f, dict)]


class ClowderUnreachable(ClowderUnavailable):
    """No attempt got any answer (refused, timed out, no route): Clowder itself is down.

    Its parent, ClowderUnavailable, also covers Clowder answering 5xx, 409 or 429, which may
    concern one resource only (a dataset whose lookup fails); this one concerns the host.
    """


class _Retryable(Exception):
    """Internal: this attempt failed in a way another attempt may not."""

    def __init__(self, problem: str, *, answered: bool = False) -> None:
        super().__init__(problem)
        self.answered = answered  # Clowder answered (with an error status) rather than not at all


def clowder_job_id(answer: Any) -> str | None:
    """Clowder's job id in a submission answer: v1 `{"status": "OK", "job_id": …}`, v2 the id
    as a JSON string (`submit_extraction` gives it as `{"job_id": …}`); None if there is none."""
    if isinstance(answer, str):
        return answer or None
    if isinstance(answer, Mapping):
        found = answer.get("job_id") or answer.get("jobid")
        return str(found) if isinstance(found, str | int) and found != "" else None
    return None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except Exception:  # a broken error body is no reason to hide the status
        return b""


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


class FailFast:
    """Calls to Clowder that fail at once for `cooldown_s` after one ClowderUnavailable.

    A batch touching many datasets then waits for one failed request, not one per dataset; its
    events go to the retry queue either way. `between` runs before each real request (the daemon
    passes the source's keepalive so broker heartbeats flow during slow lookups). Thread-safe.
    """

    def __init__(
        self,
        cooldown_s: float = 10.0,
        *,
        between: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown_s = cooldown_s
        self.between = between
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._last_problem = ""

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, or ClowderUnavailable at once while Clowder is known to be down."""
        with self._lock:
            if self._clock() < self._down_until:
                raise ClowderUnavailable(f"Clowder was unavailable just now: {self._last_problem}")
        if self.between is not None:
            self.between()
        try:
            return function(*args)
        except ClowderUnavailable as exc:
            with self._lock:
                self._down_until = self._clock() + self.cooldown_s
                self._last_problem = str(exc)
            raise
