"""Tests of the public fakes rule authors and our own tests use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.daemon import Daemon
from switchboard.errors import ClowderUnavailable, DeliveryFailed
from switchboard.events import parse_event
from switchboard.model import Submission
from switchboard.ports import OutboxRow, Sink, Source
from switchboard.processor import BatchResult
from switchboard.relay import RelayStats
from switchboard.testing import FakeClowder, ListSource, RecordingSink

FIXTURES = Path(__file__).parent / "fixtures"


def record(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def row(job: str = "job-1") -> OutboxRow:
    submission = Submission(job, "rule", "extractor.q", "dataset", "ds", "amqp", {}, "msg")
    return OutboxRow(submission, {"id": "ds"}, {}, "pending", 0, datetime.now(UTC))


# --- ListSource --------------------------------------------------------------------------------


def test_list_source_yields_fixture_records_as_parseable_deliveries():
    source = ListSource([record("v1_dataset_file_added.json"), record("v2_file_job.json")])
    [batch] = list(source.batches(10, 0.0))
    assert [d.delivery_tag for d in batch] == [1, 2]
    first = parse_event(batch[0].body, batch[0].properties, routing_key=batch[0].routing_key)
    assert first.reply_to == "clowder.a1b2c3d4e5"
    assert first.file is not None and first.file.name.endswith("_left.tif")


def test_list_source_takes_the_routing_key_from_the_record_or_its_properties():
    source = ListSource(
        [
            {"routing_key": "clowder.dataset.file.added", "body": {}},
            {"properties": {"routing_key": "from.properties"}, "body": {}},
            b"raw bytes",
        ]
    )
    deliveries = next(source.batches(3, 0.0))
    assert [d.routing_key for d in deliveries] == [
        "clowder.dataset.file.added",
        "from.properties",
        "",
    ]
    assert "routing_key" not in deliveries[1].properties
    assert deliveries[2].body == b"raw bytes"


def test_list_source_batches_respect_max_size_and_call_on_exhausted_once():
    ended: list[bool] = []
    source = ListSource([{"n": i} for i in range(5)], on_exhausted=lambda: ended.append(True))
    assert [len(b) for b in source.batches(2, 0.0)] == [2, 2, 1]
    assert ended == [True]


def test_list_source_tracks_acks_dead_letters_and_delays():
    source = ListSource([{"n": i} for i in range(4)])
    batch = next(source.batches(4, 0.0))
    source.dead_letter(batch[0], "bad")
    source.delay(batch[3], "later")
    source.ack_through(2)
    assert source.acked == {1, 2, 4}
    assert [d.delivery_tag for d in source.unacked] == [3]
    assert source.dead_letters == [(batch[0], "bad")]
    assert source.delayed == [(batch[3], "later")]


def test_list_source_and_recording_sink_satisfy_the_ports():
    source: Source = ListSource([])
    sink: Sink = RecordingSink()
    assert source is not None and sink is not None


class _AckEverything:
    """A processor stand-in that commits every delivery."""

    def process(self, batch):
        return BatchResult(committed=list(batch))


class _NoRelay:
    def run_once(self):
        return RelayStats()


def test_a_daemon_fed_by_a_list_source_processes_everything_and_stops():
    source = ListSource([record("v1_dataset_file_added.json")] * 3)
    daemon = Daemon(source, _AckEverything(), _NoRelay(), batch_size=2)  # type: ignore[arg-type]
    source.on_exhausted = daemon.stop
    assert daemon.run() == 0
    assert source.acked == {1, 2, 3}
    assert source.stopped


# --- RecordingSink -----------------------------------------------------------------------------


def test_recording_sink_fails_as_often_as_told_then_records():
    sink = RecordingSink(fail_times=2)
    for _ in range(2):
        with pytest.raises(DeliveryFailed):
            sink.send(row())
    sink.send(row())
    assert sink.attempts == 3
    assert sink.job_ids == ["job-1"]
    assert sink.bodies_for("extractor.q") == [{"id": "ds"}]


def test_recording_sink_can_fail_with_another_error():
    sink = RecordingSink(fail_times=1, error=ClowderUnavailable)
    with pytest.raises(ClowderUnavailable):
        sink.send(row())


def test_recording_sink_send_many_reports_each_row():
    sink = RecordingSink(fail_times=1)
    results = sink.send_many([row("a"), row("b")])
    assert [(r.submission.job_id, type(e).__name__ if e else None) for r, e in results] == [
        ("a", "DeliveryFailed"),
        ("b", None),
    ]


# --- FakeClowder -------------------------------------------------------------------------------


def fetch(url: str, data: dict | None = None, timeout_s: float = 5.0) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST" if body else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_fake_clowder_answers_dataset_lookups_like_clowder_v1():
    with FakeClowder(datasets={"ds1": "Name"}, api_key="k") as fake:
        assert fetch(f"{fake.url}/api/datasets/ds1?key=k") == (
            200,
            {"id": "ds1", "name": "Name", "description": "", "files": []},
        )
        assert fetch(f"{fake.url}/api/datasets/unknown?key=k")[0] == 404
        assert fetch(f"{fake.url}/api/datasets/ds1?key=wrong")[0] == 401
    assert [(r.method, r.path, r.key) for r in fake.requests] == [
        ("GET", "/api/datasets/ds1", "k"),
        ("GET", "/api/datasets/unknown", "k"),
        ("GET", "/api/datasets/ds1", "wrong"),
    ]


def test_fake_clowder_accepts_extraction_requests_and_records_them():
    with FakeClowder(api_key="k") as fake:
        status, answer = fetch(f"{fake.url}/api/files/f1/extractions?key=k", {"extractor": "e"})
        assert status == 200 and answer["status"] == "OK" and len(answer["job_id"]) == 24
        assert fetch(f"{fake.url}/api/datasets/d1/extractions?key=k", {"extractor": "e"})[0] == 200
        assert fetch(f"{fake.url}/api/files/f1/extractions?key=k", {"no": "extractor"})[0] == 500
    assert [r.json for r in fake.extractions()] == [
        {"extractor": "e"},
        {"extractor": "e"},
        {"no": "extractor"},
    ]


def test_fake_clowder_fails_the_next_requests_when_told():
    with FakeClowder(datasets={"ds1": "Name"}, api_key="k") as fake:
        fake.fail_next(2, status=503)
        statuses = [fetch(f"{fake.url}/api/datasets/ds1?key=k")[0] for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_fake_clowder_can_hang_and_releases_hung_requests_on_exit():
    with FakeClowder(datasets={"ds1": "Name"}, api_key="k") as fake:
        fake.hang_s = 30.0
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            fetch(f"{fake.url}/api/datasets/ds1?key=k", timeout_s=0.2)


def test_fake_clowder_url_needs_a_running_server():
    with pytest.raises(RuntimeError):
        _ = FakeClowder().url
