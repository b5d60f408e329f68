"""The Ray sink against a real local Ray cluster (`ray start --head`, once per test session)."""

from __future__ import annotations

import json
import shlex
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "ray.job_submission", reason="Ray is not installed (pip install -e '.[dev]' installs it)"
)

from ray.job_submission import JobStatus, JobSubmissionClient

from switchboard.collections.manifests import with_manifest_files
from switchboard.engine import Engine
from switchboard.errors import DeliveryFailed, SubmissionRejected
from switchboard.events import event_from_record
from switchboard.model import Submission
from switchboard.outgoing import extractor_message
from switchboard.ports import OutboxRow
from switchboard.processor import Processor
from switchboard.ray_local import RAY_ADDRESS_VARIABLES as RAY_VARIABLES
from switchboard.ray_local import free_port
from switchboard.relay import Relay
from switchboard.rules import load_rules
from switchboard.sink_registry import plain_options
from switchboard.sinks.ray_jobs import RayJobSink
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.ray_head import finished
from tests.test_ray_targets import FIXTURE, file_added

pytestmark = pytest.mark.ray

# What a job runs: it writes the SWITCHBOARD_JOB it got, and one variable the rule set, to argv[1].
WRITE_JOB = (
    "import json, os, sys; json.dump({'job': json.loads(os.environ['SWITCHBOARD_JOB']),"
    " 'greeting': os.environ.get('GREETING')}, open(sys.argv[1], 'w'))"
)


@pytest.fixture
def client(ray_client: JobSubmissionClient) -> JobSubmissionClient:
    return ray_client


def ray_row(entrypoint: str, runtime_env: dict[str, Any] | None = None) -> OutboxRow:
    """A pending via-ray row for a collection firing, built the way the processor builds it."""
    event = event_from_record(json.loads(FIXTURE.read_text(encoding="utf-8")))
    submission = Submission(
        job_id=str(uuid.uuid4()),
        rule="mosaic-on-ray",
        extractor="fieldmosaic",
        resource_type="dataset",
        resource_id=event.dataset_id or "",
        via="ray",
        parameters={"manifest_id": "manifest-1", "file_paths": "/manifests/manifest-1.json"},
        event_message_id=event.message_id,
        options=plain_options({"entrypoint": entrypoint, "runtime_env": runtime_env}),
    )
    body, properties = extractor_message(event, submission)
    return OutboxRow(submission, body, properties, "pending", 0, datetime.now(UTC))


def writes_job_to(path: Path) -> str:
    return shlex.join([sys.executable, "-c", WRITE_JOB, str(path)])


def test_a_sent_row_runs_its_entrypoint_with_the_job_but_not_its_secret_key(
    client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    out = tmp_path / "job.json"
    row = ray_row(writes_job_to(out), {"env_vars": {"GREETING": "hello"}})

    RayJobSink(ray_address).send(row)

    job_id = row.submission.job_id
    assert finished(client, job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)
    seen = json.loads(out.read_text())
    assert row.body["secretKey"]
    assert seen["job"] == {k: v for k, v in row.body.items() if k != "secretKey"}
    assert seen["job"]["parameters"]["manifest_id"] == "manifest-1"
    assert seen["job"]["job_id"] == job_id
    assert seen["greeting"] == "hello"  # the rule's runtime_env is kept
    metadata = client.get_job_info(job_id).metadata or {}
    assert {k: metadata.get(k) for k in ("rule", "target", "job_id")} == {
        "rule": "mosaic-on-ray",
        "target": "fieldmosaic",
        "job_id": job_id,
    }


def test_sending_the_same_row_twice_creates_one_job(
    client: JobSubmissionClient, ray_address: str
) -> None:
    row = ray_row(shlex.join([sys.executable, "-c", "pass"]))
    sink = RayJobSink(ray_address)

    sink.send(row)
    sink.send(row)  # a replayed outbox row
    finished(client, row.submission.job_id)
    sink.send(row)  # and once more after the job ended

    ids = [job.submission_id for job in client.list_jobs()]
    assert ids.count(row.submission.job_id) == 1


def test_a_job_spec_ray_refuses_fails_for_good(
    client: JobSubmissionClient, ray_address: str
) -> None:
    row = ray_row("true", {"pip": 123})  # not a list of requirements: Ray refuses it

    with pytest.raises(SubmissionRejected, match="Ray refused job"):
        RayJobSink(ray_address).send(row)
    assert row.submission.job_id not in [job.submission_id for job in client.list_jobs()]


def test_an_unreachable_ray_raises_delivery_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in RAY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    sink = RayJobSink(f"http://ops:s3cret@127.0.0.1:{free_port()}", timeout_s=5.0)

    with pytest.raises(DeliveryFailed, match="unreachable") as failed:
        sink.send(ray_row("true"))
    assert "s3cret" not in str(failed.value)


def test_the_relay_sends_a_fired_collection_to_ray_with_its_manifest(
    client: JobSubmissionClient, ray_address: str, tmp_path: Path
) -> None:
    out = tmp_path / "job.json"
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"""\
- name: mosaic-on-ray
  when:
    file.name: {{suffix: "_left.tif"}}
  collect:
    key: "mosaic/{{dataset.id}}"
    member: "{{file.id}}"
    data: {{path: "/data/{{file.name}}"}}
    until: {{count: 2}}
    manifest_file: true
  submit:
    extractor: fieldmosaic
    via: ray
    entrypoint: {json.dumps(writes_job_to(out))}
    runtime_env: {{env_vars: {{GREETING: hi}}}}
    parameters: {{output_dataset: "Full Field"}}
""",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    store = SqlStore(url)
    processor = Processor(
        Engine(load_rules([rules])),
        store,
        extractor_message,
        manifest_dir=str(tmp_path / "manifests"),
    )
    try:
        fired = processor.process([ListDelivery.from_record(n, file_added(n)) for n in (1, 2)])
        relay = Relay(
            store,
            with_manifest_files(
                {"ray": RayJobSink(ray_address)}, store, str(tmp_path / "manifests")
            ),
        )
        stats = relay.run_once()
        assert (stats.sent, stats.failed, stats.retried) == (1, 0, 0)
        assert store.counts_by_status().get("sent") == 1
    finally:
        processor.engine.close()
        store.close()

    [submission] = fired.submissions
    assert finished(client, submission.job_id) == JobStatus.SUCCEEDED
    parameters = json.loads(out.read_text())["job"]["parameters"]
    assert parameters["manifest_id"] == submission.parameters["manifest_id"]
    assert parameters["output_dataset"] == "Full Field"
    assert json.loads(Path(parameters["file_paths"]).read_text()) == [
        "/data/plot-1_left.tif",
        "/data/plot-2_left.tif",
    ]


def test_a_dashboard_that_accepts_and_never_answers_fails_the_send_within_its_timeout() -> None:
    import threading

    from tests.silent_server import SilentServer

    server = SilentServer()
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            RayJobSink(server.url, timeout_s=0.5).send(ray_row("true"))
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)
        else:
            outcome.append(None)

    sender = threading.Thread(target=send, daemon=True)
    try:
        sender.start()
        sender.join(60)  # a bound on waiting; without a timeout the send would never end
        assert not sender.is_alive(), "the send to a silent dashboard never ended"
        assert server.accepted.is_set()
        [error] = outcome
        assert isinstance(error, DeliveryFailed)
        assert "unreachable" in str(error)
    finally:
        server.close()


def test_a_body_that_is_not_json_fails_its_ray_row_for_good_before_any_request() -> None:
    from dataclasses import replace

    from switchboard.errors import MessageNotEncodable

    row = ray_row("true")
    row = replace(row, body={**row.body, "parameters": {"when": object()}})
    with pytest.raises(MessageNotEncodable, match=row.submission.job_id):
        RayJobSink("http://127.0.0.1:1").send(row)  # nothing listens there: no request made
