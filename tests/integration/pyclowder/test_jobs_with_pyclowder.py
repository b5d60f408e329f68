"""`switchboard run` with real pyclowder 3.0.8 extractors: jobs, timelines, relayed updates.

The daemon runs as a subprocess on the test's own queue and schema; the extractors run from
the pyclowder virtualenv on queues of their own, against a local Clowder v1 REST API. Events
carry a reply_to and correlation_id as Clowder's do; the daemon points the extractors' replies
at its status queue, records each update in the job's timeline and relays it, unchanged, to
the original reply_to with the original correlation_id (issue 9, items 1-3, 5, 7).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pika
import pika.exceptions
import pytest

from switchboard.jobids import job_id
from tests.integration.clowder_events import DATASET, file_added, file_id
from tests.integration.conftest import SWITCHBOARD, wait_for
from tests.integration.pyclowder.conftest import TRIGGER, URI
from tests.integration.pyclowder.harness import (
    UPDATE_KEYS,
    Update,
    consumers,
    delete_queues,
    read_updates,
    take_all,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.timeout(600)]

CORRELATION = f"corr-{TRIGGER}"
RULE_YAML = """\
- name: {name}
  on: dataset.file.added
  when:
    file.name: {{suffix: ".tif"}}
  submit:
    extractor: {extractor}
    resource: dataset
    via: amqp
"""
SCRIPTS = ("succeeds", "ignores", "fails")


def write_rules(wiring: Any, targets: dict[str, str]) -> None:
    """One rule per extractor script: `pyc-<script>` submits the event's dataset to it."""
    wiring.rules.write_text(
        "".join(RULE_YAML.format(name=f"pyc-{s}", extractor=q) for s, q in targets.items())
    )


def our_job(script: str, extractor: str, dataset: str = DATASET) -> str:
    return job_id(f"pyc-{script}", extractor, "dataset", dataset)


def publish_event(wiring: Any, body: dict[str, Any], reply_to: str, correlation: str) -> None:
    props = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        reply_to=reply_to,
        correlation_id=correlation,
    )
    with wiring.channel() as channel:
        channel.queue_declare(wiring.queue, durable=True)
        channel.basic_publish("", wiring.queue, json.dumps(body).encode(), props)


def job_json(wiring: Any, job: str) -> dict[str, Any] | None:
    """`switchboard job JOB --json` as a dict; None while the daemon has no such job."""
    done = subprocess.run(
        [str(SWITCHBOARD), "job", job, "--json"],
        env=wiring.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        assert f"no job {job}" in done.stderr, done.stderr
        return None
    return json.loads(done.stdout)


def timeline_rows(wiring: Any, jobs: list[str]) -> int:
    """How many timeline rows `jobs` have together (read from the daemon's database)."""
    listed = ", ".join(f"'{job}'" for job in jobs)  # our own UUIDs
    return int(wiring.query(f"SELECT count(*) FROM job_updates WHERE job_id IN ({listed})")[0][0])


def timeline_of(wiring: Any, job: str, length: int) -> dict[str, Any]:
    """`switchboard job JOB --json` once the job's timeline has `length` rows."""
    wait_for(lambda: timeline_rows(wiring, [job]) >= length, 120, f"{length} rows of job {job}")
    document = job_json(wiring, job)
    assert document is not None
    return document


def steps(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(row["status"], row["source"]) for row in document["timeline"]]


def start_daemon(wiring: Any, spawn: Any, **env: str) -> Any:
    """`switchboard run --migrate`, returned once it consumes its input queue (migrated)."""
    daemon = spawn(**env)
    wait_for(lambda: consumers(URI, wiring.queue) > 0, 120, "the daemon to consume")
    return daemon


@pytest.fixture
def status_queue(wiring: Any) -> Iterator[str]:
    """The daemon's status queue (SWITCHBOARD_STATUS_QUEUE's default), deleted after."""
    name = f"{wiring.queue}.status"
    yield name
    delete_queues(URI, [name])


@pytest.fixture
def three_extractors(extractor: Any, wiring: Any) -> Iterator[dict[str, str]]:
    """The three extractor scripts listening, each on a queue of its own: script -> queue."""
    targets = {s: f"{wiring.extractor}.{s}" for s in SCRIPTS}
    with ExitStack() as stack:
        for script, queue in targets.items():
            stack.enter_context(extractor(f"{script}.py", queue=queue))
        yield targets


def forwarded_by_extractor(updates: list[Update]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for update in updates:
        grouped.setdefault(update.body["extractor_id"], []).append(update.step)
    return grouped


def test_three_pyclowder_jobs_end_with_their_timelines_and_reach_clowder_unchanged(
    wiring, spawn, clowder, reply_queue, status_queue, three_extractors
):
    write_rules(wiring, three_extractors)
    daemon = start_daemon(wiring, spawn)
    body = file_added(TRIGGER, host=clowder.url, secret_key=clowder.api_key)
    publish_event(wiring, body, reply_queue, CORRELATION)
    jobs = {s: our_job(s, q) for s, q in three_extractors.items()}

    succeeded = timeline_of(wiring, jobs["succeeds"], 4)
    skipped = timeline_of(wiring, jobs["ignores"], 4)
    failed = timeline_of(wiring, jobs["fails"], 3)

    assert steps(succeeded) == [
        ("submitted", "relay"),
        ("started", "extractor"),
        ("processing", "extractor"),
        ("succeeded", "extractor"),
    ]
    assert succeeded["status"] == "succeeded"
    assert [row["message"] for row in succeeded["timeline"]] == [
        None,
        "Started processing.",
        f"Looked at 2 files: plot-0000{TRIGGER}_left.tif, plot-00007_right.tif",
        "Done processing.",
    ]
    assert succeeded["latest_message"] == "Done processing."
    # pyclowder's `done` after `skip` is kept in the timeline but does not end the job again
    assert steps(skipped) == [
        ("submitted", "relay"),
        ("started", "extractor"),
        ("skipped", "extractor"),
        ("succeeded", "extractor"),
    ]
    assert skipped["status"] == "skipped"
    assert steps(failed) == [
        ("submitted", "relay"),
        ("started", "extractor"),
        ("failed", "extractor"),
    ]
    assert failed["status"] == "failed"
    assert failed["latest_message"].startswith("Aborting message: the test extractor failed")
    for script, document in (("succeeds", succeeded), ("ignores", skipped), ("fails", failed)):
        assert document["job_id"] == jobs[script]
        assert document["target"] == three_extractors[script]
        assert document["via"] == "amqp"
        assert (document["resource_type"], document["resource_id"]) == ("dataset", DATASET)
        assert document["dataset_id"] == DATASET
        assert document["started_at"] is not None and document["finished_at"] is not None
        assert isinstance(document["elapsed_s"], float) and document["elapsed_s"] >= 0

    forwarded = read_updates(URI, reply_queue, until=lambda got: len(got) >= 8)
    assert forwarded_by_extractor(forwarded) == {
        three_extractors["succeeds"]: ["start", "processing", "done"],
        three_extractors["ignores"]: ["start", "skip", "done"],
        three_extractors["fails"]: ["start", "error"],
    }
    assert {u.correlation_id for u in forwarded} == {CORRELATION}
    for update in forwarded:
        assert set(update.body) == UPDATE_KEYS
        assert update.body["file_id"] == DATASET
        assert update.body["job_id"] == our_job(
            update.body["extractor_id"].rsplit(".", 1)[1], update.body["extractor_id"]
        )
        assert update.body["status"] == f"{update.body['message_type']}: {update.body['message']}"
        assert update.delivery_mode == 2
    assert daemon.terminate() == 0, daemon.output()


KILLED_JOBS = 9
UPDATES_PER_JOB = 3  # start, processing, done


def test_kill_9_of_the_daemon_while_updates_flow_loses_none_and_records_each_once(
    wiring, spawn, clowder, reply_queue, status_queue, extractor
):
    queue = f"{wiring.extractor}.succeeds"
    write_rules(wiring, {"succeeds": queue})
    datasets = [f"d{n:023x}" for n in range(KILLED_JOBS)]
    for n, dataset in enumerate(datasets):
        clowder.datasets[dataset] = f"dataset {n}"
        clowder.dataset_files[dataset] = [{"id": file_id(n), "filename": f"f{n}.tif"}]
    jobs = {our_job("succeeds", queue, dataset): n for n, dataset in enumerate(datasets)}
    expected = KILLED_JOBS * UPDATES_PER_JOB
    with ExitStack() as stack:
        for _ in range(3):  # three instances share the queue, as deployed extractors do
            stack.enter_context(extractor("succeeds.py", queue=queue))
        wait_for(lambda: consumers(URI, queue) == 3, 60, "three extractors on one queue")
        first = start_daemon(wiring, spawn)
        for n, dataset in enumerate(datasets):
            body = file_added(n, dataset=dataset, host=clowder.url, secret_key=clowder.api_key)
            publish_event(wiring, body, reply_queue, f"corr-{n}")
        # every job handed over first, so the kill stops relaying updates, not submissions
        # (a submission sent again would run its job twice: at-least-once, but another test)
        wait_for(lambda: sent_jobs(wiring) == KILLED_JOBS, 120, "every job submitted")
        wait_for(lambda: depth(reply_queue) >= 3, 120, "the first relayed updates")
        first.kill()
        assert depth(reply_queue) < expected, "every update was relayed before the kill"
        second = start_daemon(wiring, spawn)
        rows = len(jobs) * (1 + UPDATES_PER_JOB)  # submitted + the extractor's
        wait_for(lambda: timeline_rows(wiring, list(jobs)) >= rows, 120, f"{rows} timeline rows")
        documents = [job_json(wiring, job) for job in jobs]
        forwarded = read_updates(URI, reply_queue, until=lambda got: len(got) >= expected)
        assert second.terminate() == 0, second.output()
    forwarded += [
        Update(p.correlation_id, p.delivery_mode, p.content_type, b)
        for p, b in take_all(URI, reply_queue)
    ]
    for document in documents:
        assert document is not None
        assert document["status"] == "succeeded"
        assert sorted(row["status"] for row in document["timeline"]) == sorted(
            ["submitted", "started", "processing", "succeeded"]
        ), document["timeline"]
    copies: dict[tuple[str, str], list[Update]] = {}
    for update in forwarded:
        copies.setdefault((update.body["job_id"], update.step), []).append(update)
    assert set(copies) == {(job, s) for job in jobs for s in ("start", "processing", "done")}
    for (job, _step), same in copies.items():
        assert {u.correlation_id for u in same} == {f"corr-{jobs[job]}"}
        assert all(u.body == same[0].body for u in same), "a repeat differs from the first"
    assert depth(status_queue) == 0


def test_duplicate_and_late_updates_after_the_end_change_nothing_and_are_relayed_once(
    wiring, spawn, clowder, reply_queue, status_queue, extractor
):
    queue = f"{wiring.extractor}.succeeds"
    write_rules(wiring, {"succeeds": queue})
    job = our_job("succeeds", queue)
    with extractor("succeeds.py", queue=queue):
        daemon = start_daemon(wiring, spawn)
        body = file_added(TRIGGER, host=clowder.url, secret_key=clowder.api_key)
        publish_event(wiring, body, reply_queue, CORRELATION)
        ended = timeline_of(wiring, job, 4)
        read_updates(URI, reply_queue, until=lambda got: len(got) >= UPDATES_PER_JOB)
        late = [
            late_update(job, queue, "processing", "late progress"),
            late_update(job, queue, "done", "Done processing."),
        ]
        for raw in late + late:  # each twice: the second copy is a redelivered duplicate
            publish_update(status_queue, raw, job)
        after = timeline_of(wiring, job, 6)
        relayed = read_updates(URI, reply_queue, until=lambda got: len(got) >= 2)
        assert daemon.terminate() == 0, daemon.output()
    assert len(after["timeline"]) == 6
    assert after["status"] == "succeeded"
    for key in ("finished_at", "started_at", "latest_message"):
        assert after[key] == ended[key], key
    late_rows = [r for r in after["timeline"] if r not in ended["timeline"]]
    assert sorted((r["status"], r["message"]) for r in late_rows) == [
        ("processing", "late progress"),
        ("succeeded", "Done processing."),
    ]
    assert [u.body for u in relayed] == [json.loads(raw) for raw in late]
    assert {u.correlation_id for u in relayed} == {CORRELATION}
    assert take_all(URI, reply_queue) == []  # the duplicates were not relayed again


def late_update(job: str, queue: str, step: str, message: str) -> bytes:
    """An update shaped as pyclowder sends it, stamped 2099 so it is later than any other."""
    return json.dumps(
        {
            "file_id": DATASET,
            "extractor_id": queue,
            "job_id": job,
            "status": f"StatusMessage.{step}: {message}",
            "start": "2099-01-01T00:00:00-00:00",
            "message_type": f"StatusMessage.{step}",
            "message": message,
        }
    ).encode()


def publish_update(status_queue: str, raw: bytes, job: str) -> None:
    """Publish to the daemon's status queue as pyclowder does: persistent, correlation_id as
    the daemon set it on the extractor's message (our job id)."""
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    try:
        props = pika.BasicProperties(delivery_mode=2, correlation_id=job)
        connection.channel().basic_publish("", status_queue, raw, props)
    finally:
        connection.close()


def sent_jobs(wiring: Any) -> int:
    return int(wiring.query("SELECT count(*) FROM jobs WHERE sent_at IS NOT NULL")[0][0])


def depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        connection.close()
