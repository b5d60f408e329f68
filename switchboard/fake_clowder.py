"""A stand-in for Clowder's REST API on a local port, for tests and the demo (not production)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request FakeClowder received; `key` is its API key (`?key=` in v1, `X-API-KEY` in v2),
    kept out of `query`."""

    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    key: str | None


class FakeClowder:
    """A real HTTP server on 127.0.0.1 answering a few Clowder endpoints, for tests.

    Like Clowder v1 (the default, `api_version=1`; the key is `?key=`):

    - `GET /api/datasets/{id}`: 200 `{"id", "name", ...}` for ids in `datasets`, else 404.
    - `GET /api/datasets/{id}/files`: 200, the list in `dataset_files` (Clowder's file JSON,
      e.g. `{"id", "filename", "filepath"}`) for ids there or in `datasets`, else 404.
    - `POST /api/files/{id}/extractions`: 200 `{"status": "OK", "job_id": ...}`; 500 "No
      jobId found" without an `extractor`, as Clowder v1 does.
    - `POST /api/datasets/{id}/extractions`: 200 `{"status": "OK", "job_id": ...}`.
    - `POST /api/files/{id}/metadata.jsonld`: 200 `{"status": "OK"}` (the key may also be the
      `X-API-KEY` header, as pyclowder 3 sends it).

    Like clowder2 with `api_version=2` (the key is the `X-API-KEY` header; v1 paths get 404):

    - `GET /api/v2/datasets/{id}` and `GET /api/v2/datasets/{id}/files`, as above.
    - `POST /api/v2/{files|datasets}/{id}/extract?extractorName=…` (the body is the
      parameters): 200 with the new job id as a JSON string; 422 without `extractorName`.
    - `POST /api/v2/files/{id}/metadata`: 200 `{"id": ...}`.

    With `api_key` set, a request without that key gets 401. Switches: `fail_next(n, status)`
    answers the next `n` requests with `status`; `failing_datasets[id] = status` answers every
    GET of that dataset (and its files) with `status`; `hang_s` makes every answer wait that long
    (released at exit). `requests` records everything received; `job_ids` every job id given.
    """

    def __init__(
        self,
        datasets: Mapping[str, str] | None = None,
        *,
        api_key: str | None = None,
        api_version: int = 1,
    ) -> None:
        if api_version not in (1, 2):
            raise ValueError(f"api_version must be 1 or 2, not {api_version!r}")
        self.datasets: dict[str, str] = dict(datasets or {})
        self.dataset_files: dict[str, list[dict[str, Any]]] = {}
        self.api_key = api_key if api_key is not None else "fake-key-" + secrets.token_hex(8)
        self.api_version = api_version
        self.requests: list[RecordedRequest] = []
        self.job_ids: list[str] = []
        self.failing_datasets: dict[str, int] = {}  # dataset id -> HTTP status its GETs answer
        self.hang_s = 0.0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- switches ------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` requests with HTTP `status`."""
        with self._lock:
            self._failures.extend([status] * count)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeClowder is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        return f"http://{shown}:{port}"

    def extractions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeClowder:
        self._released.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns promptly
            name="fake-clowder",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeClowder:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- answering -----------------------------------------------------------------------------

    def _answer(
        self, method: str, raw_path: str, body: bytes, headers: Any = None
    ) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        key = query.pop("key", None)
        if self.api_version == 2 or key is None:  # pyclowder 3 sends v1 keys as a header too
            key = (headers or {}).get("X-API-KEY")
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        with self._lock:
            self.requests.append(RecordedRequest(method, split.path, query, payload, key))
            failure = self._failures.pop(0) if self._failures else None
        if self.hang_s > 0:
            self._released.wait(self.hang_s)
        if failure is not None:
            return failure, {"status": "error", "message": f"told to fail with {failure}"}
        parts = [p for p in split.path.split("/") if p]
        if self.api_version == 2 and parts[:2] != ["api", "v2"]:
            return 404, {"detail": "Not Found"}  # clowder2 has no such route, key or not
        if self.api_key and key != self.api_key:
            return 401, {"status": "Not authorized"}
        dataset_at = 3 if self.api_version == 2 else 2
        if method == "GET" and len(parts) > dataset_at and parts[dataset_at - 1] == "datasets":
            status = self.failing_datasets.get(parts[dataset_at])
            if status is not None:
                return status, {"status": "error", "message": f"dataset fails with {status}"}
        if self.api_version == 2:
            return self._answer_v2(method, parts[2:], query)
        if method == "GET" and len(parts) == 4 and parts[:2] == ["api", "datasets"]:
            return self._answer_files(parts[2], parts[3])
        if method == "GET" and len(parts) == 3 and parts[:2] == ["api", "datasets"]:
            return self._answer_dataset(parts[2])
        if method == "POST" and parts[:2] == ["api", "files"] and parts[3:] == ["metadata.jsonld"]:
            return 200, {"status": "OK"}
        if method == "POST" and len(parts) == 4 and parts[0] == "api" and parts[3] == "extractions":
            if parts[1] not in ("files", "datasets"):
                return 404, {"status": "not found"}
            if parts[1] == "files" and not (isinstance(payload, dict) and payload.get("extractor")):
                return 500, {"status": "No jobId found"}
            return 200, {"status": "OK", "job_id": self._new_job_id()}
        return 404, {"status": "not found"}

    def _answer_v2(
        self, method: str, parts: list[str], query: Mapping[str, str]
    ) -> tuple[int, Any]:
        """clowder2's routes, `parts` being the path after `/api/v2`."""
        if method == "GET" and len(parts) == 3 and parts[0] == "datasets":
            return self._answer_files(parts[1], parts[2])
        if method == "GET" and len(parts) == 2 and parts[0] == "datasets":
            return self._answer_dataset(parts[1])
        if method == "POST" and len(parts) == 3 and parts[::2] == ["files", "metadata"]:
            return 200, {"id": secrets.token_hex(12)}
        if method == "POST" and len(parts) == 3 and parts[2] == "extract":
            if parts[0] not in ("files", "datasets"):
                return 404, {"detail": "Not Found"}
            if not query.get("extractorName"):
                return 422, {"detail": "extractorName is required"}
            return 200, self._new_job_id()
        return 404, {"detail": "Not Found"}

    def _answer_dataset(self, dataset_id: str) -> tuple[int, Any]:
        name = self.datasets.get(dataset_id)
        if name is None:
            return 404, {"status": "not found"}
        return 200, {"id": dataset_id, "name": name, "description": "", "files": []}

    def _new_job_id(self) -> str:
        job = secrets.token_hex(12)
        with self._lock:
            self.job_ids.append(job)
        return job

    def _answer_files(self, dataset_id: str, tail: str) -> tuple[int, Any]:
        """`GET /api/datasets/{id}/files`: the dataset's file list, as Clowder v1 lists it."""
        if tail != "files" or (
            dataset_id not in self.dataset_files and dataset_id not in self.datasets
        ):
            return 404, {"status": "not found"}
        return 200, list(self.dataset_files.get(dataset_id, []))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = fake._answer(self.command, self.path, body, self.headers)
                data = json.dumps(answer).encode("utf-8") if answer is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test); nothing to answer

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log."""

        return Handler


# --- collection progress for rule authors ------------------------------------------------------
