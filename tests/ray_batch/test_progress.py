"""Progress reaches RabbitMQ as pyclowder-shaped status updates, throttled, with a final one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pika.adapters.blocking_connection import BlockingChannel

from switchboard.ray_batch.progress import StatusReporter
from switchboard.ray_batch.results import ResultsWriter, recorded_members
from switchboard.ray_batch.spec import StatusTarget
from tests.broker import URI
from tests.conftest import FakeClock

pytestmark = pytest.mark.rabbitmq

FIXTURE = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def status_queue(channel: BlockingChannel) -> Iterator[str]:
    name = f"test.status.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, auto_delete=False)
    yield name
    channel.queue_delete(name)


def drain(channel: BlockingChannel, queue: str) -> list[tuple[Any, dict[str, Any]]]:
    got = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((properties, json.loads(body)))


def test_status_updates_are_pyclowder_shaped_the_first_progress_at_once_then_throttled(
    channel: BlockingChannel, status_queue: str
) -> None:
    clock = FakeClock()
    target = StatusTarget(
        url=URI,
        reply_to=status_queue,
        correlation_id="corr-1",
        file_id="dataset-1",
        extractor_id="plot-classifier",
        job_id="job-1",
        every_s=10.0,
    )
    reporter = StatusReporter(target, clock=lambda: clock.now.timestamp())

    reporter.start(200)
    reporter.progress(100, 2, 200)  # the first progress: at once
    reporter.progress(110, 2, 200)  # within 10 s of the last progress: skipped
    clock.advance(11)
    reporter.progress(117, 3, 200)
    reporter.finish(True, 197, 3, 200)

    got = drain(channel, status_queue)
    assert [body["status"] for _, body in got] == [
        "StatusMessage.start: Started processing 200 members.",
        "StatusMessage.processing: 102/200 done, 2 failed",
        "StatusMessage.processing: 120/200 done, 3 failed",
        "StatusMessage.done: Done processing: 200/200 done, 3 failed.",
    ]
    shape = json.loads((FIXTURE / "pyclowder_status_update.json").read_text())
    for properties, body in got:
        assert set(body) == set(shape["body"])
        assert (body["file_id"], body["extractor_id"], body["job_id"]) == (
            "dataset-1",
            "plot-classifier",
            "job-1",
        )
        assert body["status"] == f"{body['message_type']}: {body['message']}"
        assert properties.correlation_id == "corr-1"
        assert properties.delivery_mode == 2


def test_a_broker_that_is_down_costs_the_update_not_the_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = StatusTarget(url="amqp://guest:guest@127.0.0.1:1/%2f", reply_to="nowhere")
    reporter = StatusReporter(target)
    reporter.start(3)  # logged, not raised
    reporter.finish(False, 1, 2, 3)
    assert caplog.text.count("status update to nowhere not sent") == 2


def test_a_results_file_remembers_its_members_across_runs_and_ignores_a_torn_line(
    tmp_path: Path,
) -> None:
    with ResultsWriter(tmp_path) as results:
        results.write([{"member": "a", "ok": True}, {"member": "b", "ok": False}])
        results.write([{"member": "a", "ok": False}])  # a replayed batch: not recorded again
    with (tmp_path / "results.jsonl").open("a") as torn:
        torn.write('{"member": "c", "o')

    assert recorded_members(tmp_path / "results.jsonl") == {"a": True, "b": False}
    with ResultsWriter(tmp_path) as again:
        assert (again.seen, again.done, again.failed) == ({"a", "b"}, 1, 1)
        again.write([{"member": "c", "ok": True}])
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["member"] for line in lines] == ["a", "b", "c"]
