"""`batch:` rules end to end on the session's real local Ray: firing, submit, runner, results."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pika.adapters.blocking_connection import BlockingChannel

pytest.importorskip("ray.job_submission", reason="Ray is not installed (the dev extra)")

from ray.job_submission import JobStatus, JobSubmissionClient

from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.relay import Relay
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.sinks.ray_jobs import from_settings
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.ray_head import finished
from tests.test_ray_targets import file_added

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]

# The daemon, killed (os._exit) after Ray took the job and before the outbox row is marked sent.
DIES_AFTER_SUBMIT = textwrap.dedent(
    """\
    import os, sys
    from switchboard.ports import Sink
    from switchboard.relay import Relay
    from switchboard.settings import Settings
    from switchboard.sinks.ray_jobs import from_settings
    from switchboard.store.sql import SqlStore

    url, address, output, queue = sys.argv[1:5]
    store = SqlStore(url)
    settings = Settings(ray_address=address, ray_output_dir=output, queue=queue)
    sink = from_settings(settings, 60.0, store)

    class DiesAfterSubmit(Sink):
        def send(self, row):
            sink.send(row)
            os._exit(9)

    Relay(store, {"ray": DiesAfterSubmit()}, lease_s=1.0).run_once()  # its claim ends soon
    """
)


def batch_rule(count: int, batch: str, resources: str = "{num_cpus: 0.5}", env: str = "") -> str:
    """A collection of `count` left images submitted as a batch job. The rule's name is new
    each time: job ids derive from it, and the session's Ray keeps every job it was sent."""
    return f"""\
- name: plots-{uuid.uuid4().hex[:8]}
  when:
    file.name: {{suffix: "_left.tif"}}
  collect:
    key: "plots/{{dataset.id}}"
    member: "{{file.id}}"
    data: {{path: "/data/{{file.name}}", name: "{{file.name}}"}}
    until: {{count: {count}}}
  submit:
    extractor: plot-classifier
    via: ray
    resources: {resources}
    batch: {batch}
{env}"""


def quiet(ray_address: str, **changes: Any) -> Settings:
    """Settings for a job that publishes no progress (no broker to publish to)."""
    return Settings(ray_address=ray_address, rabbitmq_uri="", **changes)


@pytest.fixture
def client(ray_client: JobSubmissionClient) -> JobSubmissionClient:
    return ray_client


@pytest.fixture
def status_queue(channel: BlockingChannel) -> Iterator[tuple[str, str]]:
    """Our input queue's name and its status queue (declared, deleted afterwards)."""
    queue = f"test.batch.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(f"{queue}.status", durable=False, auto_delete=False)
    yield queue, f"{queue}.status"
    channel.queue_delete(f"{queue}.status")


def fire(tmp_path: Path, rule: str, events: list[dict[str, Any]]) -> tuple[str, SqlStore]:
    """Process the events with the daemon's processor; the database URL and its store."""
    path = tmp_path / "rules.yaml"
    path.write_text(rule, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    store = SqlStore(url)
    processor = Processor(Engine(load_rules([path])), store, extractor_message)
    try:
        for start in range(0, len(events), 50):
            chunk = events[start : start + 50]
            processor.process([ListDelivery.from_record(start + i, e) for i, e in enumerate(chunk)])
    finally:
        processor.engine.close()
    return url, store


def results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]


def statuses(channel: BlockingChannel, queue: str) -> list[dict[str, Any]]:
    bodies = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(json.loads(body))


def test_a_200_member_collection_fires_once_and_its_job_runs_each_member_once_despite_a_kill(
    client: JobSubmissionClient,
    ray_address: str,
    tmp_path: Path,
    channel: BlockingChannel,
    status_queue: tuple[str, str],
) -> None:
    queue, status = status_queue
    events = [file_added(n) for n in range(1, 201)]
    events += [file_added(n) for n in range(1, 21)]  # redelivered: no second firing
    rule = batch_rule(
        200, '{processor: "switchboard_ray_batch.examples:FileFacts", batch_size: 16}'
    )
    url, store = fire(tmp_path, rule, events)
    output = tmp_path / "out"
    try:
        [row] = store.due_outbox(10)
        job_id = row.submission.job_id
        died = subprocess.run(
            [sys.executable, "-c", DIES_AFTER_SUBMIT, url, ray_address, str(output), queue],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert died.returncode == 9, died.stderr
        assert store.counts_by_status()["pending"] == 1  # Ray has the job; we never recorded it

        settings = Settings(ray_address=ray_address, ray_output_dir=str(output), queue=queue)
        sink = from_settings(settings, 60.0, store)
        relay = Relay(store, {"ray": sink})  # the restarted daemon, once the dead one's claim ends
        deadline = time.monotonic() + 30
        while (stats := relay.run_once()).total == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (stats.sent, stats.failed) == (1, 0)
        assert (store.counts_by_status()["pending"], store.counts_by_status()["sent"]) == (0, 1)
    finally:
        store.close()

    assert finished(client, job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)
    assert [j.submission_id for j in client.list_jobs()].count(job_id) == 1
    records = results(output / job_id)
    assert len(records) == 200
    assert {r["member"] for r in records} == {f"{n:024x}" for n in range(1, 201)}
    assert {r["result"]["name"] for r in records} == {f"plot-{n}_left.tif" for n in range(1, 201)}
    updates = statuses(channel, status)
    assert {u["job_id"] for u in updates} == {job_id}
    assert updates[0]["status"] == "StatusMessage.start: Started processing 200 members."
    assert updates[-1]["status"] == "StatusMessage.done: Done processing: 200/200 done, 0 failed."
    assert all(set(u) >= {"file_id", "extractor_id", "start", "message_type"} for u in updates)


def test_per_task_options_reach_ray_and_a_member_that_raises_is_recorded_alone(
    client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    batch = (
        '{processor: "tests.ray_batch.processors:Probe", processor_args: {fail: [plot-3_left.tif]},'
        " num_cpus: 0.5, resources: {bigdb: 0.25}, batch_size: 2, concurrency: 2,"
        " max_error_fraction: 0.5}"
    )
    env = f"    runtime_env: {{env_vars: {{PYTHONPATH: {json.dumps(str(REPO))}}}}}\n"
    rule = batch_rule(6, batch, resources="{num_cpus: 0.25, custom: {bigdb: 0.25}}", env=env)
    _, store = fire(tmp_path, rule, [file_added(n) for n in range(1, 7)])
    output = tmp_path / "out"
    try:
        [row] = store.due_outbox(10)
        job_id = row.submission.job_id
        sink = from_settings(quiet(ray_address, ray_output_dir=str(output)), 60.0, store)
        assert Relay(store, {"ray": sink}).run_once().sent == 1
    finally:
        store.close()

    assert finished(client, job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)
    by_name = {r["name"]: r for r in results(output / job_id)}
    assert len(by_name) == 6
    failed = by_name.pop("plot-3_left.tif")
    assert not failed["ok"] and "cannot read plot-3_left.tif" in failed["traceback"]
    assert all(r["ok"] for r in by_name.values())
    assigned = {json.dumps(r["result"]["resources"], sort_keys=True) for r in by_name.values()}
    assert assigned == {json.dumps({"CPU": 0.5, "bigdb": 0.25}, sort_keys=True)}


def test_a_batch_job_asking_for_a_resource_no_node_has_stays_pending_and_ray_says_why(
    client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    rule = batch_rule(
        1,
        '{processor: "switchboard_ray_batch.examples:FileFacts"}',
        resources="{custom: {nosuch: 1}}",
    )
    _, store = fire(tmp_path, rule, [file_added(1)])
    try:
        [row] = store.due_outbox(10)
        job_id = row.submission.job_id
        sink = from_settings(quiet(ray_address), 60.0, store)
        assert Relay(store, {"ray": sink}).run_once().sent == 1
    finally:
        store.close()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            info = client.get_job_info(job_id)
            assert info.status == JobStatus.PENDING
            time.sleep(0.5)
        assert "waiting for resources" in (info.message or "")
    finally:
        client.stop_job(job_id)


def test_post_metadata_puts_each_result_on_its_file_in_clowder_with_the_jobs_key(
    client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    from switchboard.fake_clowder import FakeClowder

    batch = '{processor: "switchboard_ray_batch.examples:FileFacts", post_metadata: true}'
    with FakeClowder(api_key="the-jobs-key") as clowder:
        events = []
        for n in (1, 2, 3):
            event = file_added(n)
            event["body"].update(host=clowder.url, secretKey="the-jobs-key")
            events.append(event)
        _, store = fire(tmp_path, batch_rule(3, batch), events)
        output = tmp_path / "out"
        try:
            [row] = store.due_outbox(10)
            job_id = row.submission.job_id
            settings = quiet(ray_address, ray_output_dir=str(output))
            assert Relay(store, {"ray": from_settings(settings, 60.0, store)}).run_once().sent == 1
        finally:
            store.close()
        assert finished(client, job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)
        posts = [r for r in clowder.requests if r.path.endswith("/metadata.jsonld")]
        url = clowder.url

    summary = json.loads((output / job_id / "summary.json").read_text())
    assert (summary["metadata_posted"], summary["metadata_failed"]) == (3, 0)
    assert sorted(p.path for p in posts) == [
        f"/api/files/{n:024x}/metadata.jsonld" for n in (1, 2, 3)
    ]
    assert {p.key for p in posts} == {"the-jobs-key"}
    [first] = [p.json for p in posts if p.path.startswith(f"/api/files/{1:024x}")]
    assert first["content"] == {"name": "plot-1_left.tif", "suffix": ".tif", "size_bytes": None}
    assert first["attachedTo"] == {"resourceType": "file", "id": f"{1:024x}"}
    assert first["agent"]["extractor_id"] == f"{url}/api/extractors/plot-classifier"
