"""Fakes for testing rules and the daemon without a broker: a list source, a sink, a fake Clowder.

Rule authors can run their rules against recorded events with `ListSource` and
`RecordingSink`, and point anything that talks to Clowder at a `FakeClowder`, a real HTTP
server on 127.0.0.1 that answers like Clowder v1 (or, with `api_version=2`, like clowder2)::

    with FakeClowder(datasets={"ds1": "stereoTop - 2017-05-01"}) as clowder:
        client = ClowderClient(clowder.url, clowder.api_key)
        assert client.dataset_name("ds1") == "stereoTop - 2017-05-01"
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rule_utils.binding import ProgressStore

from .errors import DeliveryFailed
from .ports import OutboxRow, Sink

__all__ = [
    "FakeClowder",
    "ListDelivery",
    "ListSource",
    "RecordedRequest",
    "RecordingSink",
]


# --- source ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListDelivery:
    """One message of a ListSource (implements `ports.Delivery`)."""

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    routing_key: str = ""
    redelivered: bool = False

    @classmethod
    def from_record(cls, delivery_tag: int, record: Any) -> ListDelivery:
        """From raw bytes, a bare body object, or a fixture record `{properties, body}`.

        The routing key is the record's `routing_key`, else `properties.routing_key`.
        """
        if isinstance(record, bytes | bytearray):
            return cls(delivery_tag, bytes(record))
        if isinstance(record, str):
            return cls(delivery_tag, record.encode("utf-8"))
        if not isinstance(record, Mapping) or "body" not in record:
            return cls(delivery_tag, json.dumps(record).encode("utf-8"))
        properties = dict(record.get("properties") or {})
        routing_key = record.get("routing_key") or properties.pop("routing_key", "") or ""
        body = record["body"]
        if isinstance(body, bytes | bytearray):
            raw = bytes(body)
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")
        return cls(delivery_tag, raw, properties, str(routing_key))


class ListSource:
    """A `ports.Source` over a list of records, tracking what was acked, dead-lettered, delayed.

    Records may be fixture-style `{"properties", "body"}` objects, bare bodies or raw bytes.
    `batches()` yields them in order and ends when they run out, first calling `on_exhausted`
    (pass `daemon.stop` so a daemon finishes cleanly).
    """

    def __init__(
        self,
        records: Iterable[Any],
        *,
        on_exhausted: Callable[[], None] | None = None,
    ) -> None:
        self.deliveries = [ListDelivery.from_record(i, r) for i, r in enumerate(records, 1)]
        self.on_exhausted = on_exhausted
        self.acked: set[int] = set()
        self.dead_letters: list[tuple[ListDelivery, str]] = []
        self.delayed: list[tuple[ListDelivery, str]] = []
        self.stopped = False
        self._handed_out = 0

    def batches(self, max_size: int, max_wait_s: float) -> Iterator[list[ListDelivery]]:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        while not self.stopped and self._handed_out < len(self.deliveries):
            batch = self.deliveries[self._handed_out : self._handed_out + max_size]
            self._handed_out += len(batch)
            yield batch
        if self.on_exhausted is not None and not self.stopped:
            self.on_exhausted()

    def ack_through(self, delivery_tag: int) -> None:
        self.acked.update(d.delivery_tag for d in self.deliveries[:delivery_tag])

    def dead_letter(self, delivery: ListDelivery, reason: str) -> None:
        self.dead_letters.append((delivery, reason))
        self.acked.add(delivery.delivery_tag)

    def delay(self, delivery: ListDelivery, reason: str) -> None:
        self.delayed.append((delivery, reason))
        self.acked.add(delivery.delivery_tag)

    def keepalive(self) -> None:
        """Nothing to keep alive: a list has no connection."""

    def reconnect(self) -> None:
        """Nothing to reconnect."""

    def stop(self) -> None:
        self.stopped = True

    @property
    def unacked(self) -> list[ListDelivery]:
        """Deliveries handed out but not settled (what a broker would redeliver)."""
        return [d for d in self.deliveries[: self._handed_out] if d.delivery_tag not in self.acked]


# --- sink --------------------------------------------------------------------------------------


class RecordingSink(Sink):
    """A `ports.Sink` that keeps every row sent; told to, it fails the first `fail_times` sends.

    `attempts` counts every call, `rows` only the successful ones.
    """

    batched = True  # send_many publishes a chunk in one round trip

    def __init__(
        self,
        fail_times: int = 0,
        error: Callable[[str], Exception] = DeliveryFailed,
    ) -> None:
        self.fail_times = fail_times
        self.error = error
        self.rows: list[OutboxRow] = []
        self.attempts = 0

    def send(self, row: OutboxRow) -> None:
        self.attempts += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.error(f"told to fail sending {row.submission.job_id}")
        self.rows.append(row)

    def send_many(self, rows: Sequence[OutboxRow]) -> list[tuple[OutboxRow, Exception | None]]:
        results: list[tuple[OutboxRow, Exception | None]] = []
        for row in rows:
            try:
                self.send(row)
            except Exception as exc:  # reported per row, as the real sink does
                results.append((row, exc))
            else:
                results.append((row, None))
        return results

    @property
    def job_ids(self) -> list[str]:
        return [row.submission.job_id for row in self.rows]

    def bodies_for(self, extractor: str) -> list[Mapping[str, Any]]:
        return [row.body for row in self.rows if row.submission.extractor == extractor]


# --- Clowder -----------------------------------------------------------------------------------


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

    Like clowder2 with `api_version=2` (the key is the `X-API-KEY` header; v1 paths get 404):

    - `GET /api/v2/datasets/{id}` and `GET /api/v2/datasets/{id}/files`, as above.
    - `POST /api/v2/{files|datasets}/{id}/extract?extractorName=…` (the body is the
      parameters): 200 with the new job id as a JSON string; 422 without `extractorName`.

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
        if self.api_version == 2:
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


@dataclass
class _FakeCollection:
    generation: int = 1
    fired: set[int] = field(default_factory=set)
    members: dict[int, dict[str, tuple[Mapping[str, Any] | None, str | None]]] = field(
        default_factory=dict
    )

    def current(self) -> dict[str, tuple[Mapping[str, Any] | None, str | None]]:
        return self.members.setdefault(self.generation, {})


class InMemoryProgress(ProgressStore):
    """Collection progress in a dict, with `store.progress.Progress`'s answers, for rule tests.

    Bind it the way the daemon binds the real one, then call the rule::

        progress = InMemoryProgress()
        with rule_utils.bound(progress):
            my_rule(event, dataset)
        assert progress.count("fullfield/2017-05-01") == 1

    Generations start at 1; a member added twice counts once; `mark_fired` is True once per
    (rule, key, generation); `fired` lists what was marked.
    """

    def __init__(self) -> None:
        self._collections: dict[tuple[str, str], _FakeCollection] = {}
        self.fired: list[tuple[str, str, int]] = []

    def add_member(
        self,
        rule: str,
        key: str,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        current = self._collections.setdefault((rule, key), _FakeCollection()).current()
        if member in current:
            return False
        current[member] = (None if data is None else dict(data), extractor)
        return True

    def members(
        self, key: str, *, rule: str | None = None, generation: int | None = None
    ) -> dict[str, Mapping[str, Any] | None]:
        found: dict[str, Mapping[str, Any] | None] = {}
        for (r, k), collection in sorted(self._collections.items()):
            if k != key or (rule is not None and r != rule):
                continue
            chosen = collection.members.get(
                collection.generation if generation is None else generation, {}
            )
            for member, (data, _extractor) in chosen.items():
                if found.get(member) is None:
                    found[member] = data
        return dict(sorted(found.items()))

    def count(self, key: str, *, rule: str | None = None) -> int:
        return len(self.members(key, rule=rule))

    def counts_with_prefix(self, prefix: str, *, rule: str | None = None) -> dict[str, int]:
        keys = {k for (r, k) in self._collections if k.startswith(prefix)}
        counts = {k: self.count(k, rule=rule) for k in sorted(keys)}
        if rule is not None:
            counts = {k: n for k, n in counts.items() if (rule, k) in self._collections}
        return counts

    def generation(self, rule: str, key: str) -> int:
        collection = self._collections.get((rule, key))
        return 0 if collection is None else collection.generation

    def mark_fired(
        self,
        rule: str,
        key: str,
        generation: int,
        *,
        manifest_id: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        collection = self._collections.setdefault((rule, key), _FakeCollection())
        if generation in collection.fired:
            return False
        collection.fired.add(generation)
        self.fired.append((rule, key, generation))
        return True

    def reset(self, rule: str, key: str) -> int:
        collection = self._collections.get((rule, key))
        if collection is None:
            self._collections[(rule, key)] = _FakeCollection()
            return 1
        collection.generation += 1
        return collection.generation
