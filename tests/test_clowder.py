"""Tests of ClowderClient against FakeClowder and a small echoing HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote_plus

import pytest

from switchboard.clowder import ClowderClient
from switchboard.errors import ClowderRejected, ClowderUnavailable
from switchboard.testing import FakeClowder

SECRET = "s3cr3t/key+with&odd=chars"


@pytest.fixture
def clowder() -> Iterator[FakeClowder]:
    with FakeClowder(datasets={"ds1": "stereoTop - 2017-05-01"}, api_key=SECRET) as fake:
        yield fake


def client_for(url: str, **options) -> ClowderClient:
    options.setdefault("backoff_s", 0.0)
    return ClowderClient(url, SECRET, **options)


class EchoServer:
    """Answers every request with `status` and a body quoting the request line and headers."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.seen: list[dict] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                echo.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                data = f"you asked for {self.path} with {dict(self.headers)}".encode()
                self.send_response(echo.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> EchoServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_dataset_name_is_read_from_clowder(clowder):
    assert client_for(clowder.url).dataset_name("ds1") == "stereoTop - 2017-05-01"
    [request] = clowder.requests
    assert (request.method, request.path, request.key) == ("GET", "/api/datasets/ds1", SECRET)


def test_file_extraction_is_submitted_with_extractor_and_parameters(clowder):
    answer = client_for(clowder.url).submit_extraction(
        "file", "f1", "ncsa.image.preview", {"k": "v"}
    )
    assert answer["status"] == "OK" and answer["job_id"]
    [request] = clowder.extractions()
    assert request.path == "/api/files/f1/extractions"
    assert request.json == {"extractor": "ncsa.image.preview", "parameters": {"k": "v"}}


def test_dataset_extraction_is_submitted_to_the_dataset_endpoint(clowder):
    client_for(clowder.url).submit_extraction("dataset", "ds1", "terra.geotiff.fieldmosaic")
    [request] = clowder.extractions()
    assert request.path == "/api/datasets/ds1/extractions"
    assert request.json == {"extractor": "terra.geotiff.fieldmosaic", "parameters": {}}


def test_server_errors_are_retried_until_clowder_answers(clowder):
    clowder.fail_next(2, status=500)
    assert client_for(clowder.url, retries=3).dataset_name("ds1") == "stereoTop - 2017-05-01"
    assert len(clowder.requests) == 3


def test_retries_back_off_exponentially():
    delays: list[float] = []
    with FakeClowder(api_key=SECRET) as fake:
        fake.fail_next(3, status=502)
        client = ClowderClient(fake.url, SECRET, retries=3, backoff_s=0.5, sleep=delays.append)
        client.submit_extraction("file", "f1", "x")
    assert delays == [0.5, 1.0, 2.0]


def test_server_errors_that_persist_make_clowder_unavailable(clowder):
    clowder.fail_next(10, status=503)
    with pytest.raises(ClowderUnavailable, match="HTTP 503") as caught:
        client_for(clowder.url, retries=2).dataset_name("ds1")
    assert "3 attempts" in str(caught.value)
    assert len(clowder.requests) == 3


@pytest.mark.parametrize("status", [409, 429])
def test_not_yet_processed_and_throttled_answers_are_retried(clowder, status):
    clowder.fail_next(2, status=status)
    client_for(clowder.url, retries=3).submit_extraction("file", "f1", "x")
    assert len(clowder.requests) == 3


@pytest.mark.parametrize("status", [409, 429])
def test_a_conflict_or_throttle_that_persists_is_unavailable_not_rejected(clowder, status):
    clowder.fail_next(10, status=status)
    with pytest.raises(ClowderUnavailable, match=f"HTTP {status}"):
        client_for(clowder.url, retries=1).submit_extraction("file", "f1", "x")
    assert len(clowder.requests) == 2


def test_client_errors_are_rejected_at_once_with_status_and_excerpt(clowder):
    with pytest.raises(ClowderRejected) as caught:
        client_for(clowder.url, retries=3).dataset_name("no-such-dataset")
    assert caught.value.status == 404
    assert "not found" in str(caught.value)
    assert len(clowder.requests) == 1


def test_a_wrong_key_is_rejected_without_showing_either_key():
    with FakeClowder(api_key="the-right-key") as fake, pytest.raises(ClowderRejected) as caught:
        client_for(fake.url).dataset_name("ds1")
    assert caught.value.status == 401
    assert SECRET not in str(caught.value)


def test_a_hanging_clowder_times_out_as_unavailable(clowder):
    clowder.hang_s = 5.0
    with pytest.raises(ClowderUnavailable, match="timed out"):
        client_for(clowder.url, timeout_s=0.2, retries=1).dataset_name("ds1")


def test_a_refused_connection_is_unavailable():
    with FakeClowder() as fake:
        url = fake.url
    with pytest.raises(ClowderUnavailable):
        client_for(url, retries=1).dataset_name("ds1")


@pytest.mark.parametrize("status", [400, 500])
def test_the_api_key_never_appears_in_exception_text_even_when_echoed(status):
    with EchoServer(status) as echo:
        with pytest.raises((ClowderRejected, ClowderUnavailable)) as caught:
            client_for(echo.url, retries=0).dataset_name("ds1")
        assert f"key={quote_plus(SECRET)}" in echo.seen[0]["path"]  # it was sent...
    text = str(caught.value) + repr(caught.value) + str(caught.value.__cause__)
    for form in (SECRET, "s3cr3t%2Fkey", "s3cr3t"):
        assert form not in text  # ...and never repeated
    assert "***" in text


def test_client_repr_does_not_show_the_key():
    assert SECRET not in repr(ClowderClient("http://clowder.example", SECRET))


def test_clowder_v2_uses_the_extract_route_and_the_key_header():
    with EchoServer(200) as echo:
        client = client_for(echo.url, api_version=2)
        assert client.submit_extraction("dataset", "d2", "x.y", {"p": 1}) == {"status": 200}
    [request] = echo.seen
    assert request["method"] == "POST"
    assert request["path"] == "/api/v2/datasets/d2/extract?extractorName=x.y"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["x-api-key"] == SECRET
    assert json.loads(request["body"]) == {"p": 1}


def test_ids_are_escaped_into_a_single_path_segment(clowder):
    with pytest.raises(ClowderRejected):
        client_for(clowder.url).dataset_name("../files/x?key=y")
    assert clowder.requests[0].path == "/api/datasets/..%2Ffiles%2Fx%3Fkey%3Dy"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": "OK", "job_id": "65a1f0c2e4b0a1b2c3d4e5f7"}, "65a1f0c2e4b0a1b2c3d4e5f7"),
        ({"job_id": "66b2"}, "66b2"),
        ("66b2", "66b2"),
        ({"status": 200}, None),
        ({"status": "OK"}, None),
        (None, None),
    ],
)
def test_clowders_job_id_is_read_from_v1_and_v2_answers(answer, expected):
    from switchboard.clowder import clowder_job_id

    assert clowder_job_id(answer) == expected


def test_a_v2_client_reads_dataset_names_with_the_key_in_a_header():
    with FakeClowder(datasets={"ds1": "stereoTop - 1"}, api_version=2) as fake:
        client = ClowderClient(fake.url, fake.api_key, api_version=2, retries=0)
        assert client.dataset_name("ds1") == "stereoTop - 1"
        with pytest.raises(ClowderRejected, match="401"):
            ClowderClient(fake.url, "wrong", api_version=2, retries=0).dataset_name("ds1")
    assert [(r.path, r.query) for r in fake.requests] == [("/api/v2/datasets/ds1", {})] * 2
