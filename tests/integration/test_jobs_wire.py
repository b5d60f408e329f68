"""Jobs on the real RabbitMQ and PostgreSQL: a simulated pyclowder extractor answers our
submissions on our status queue; timelines, forwarding to Clowder, duplicates and orphans."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pika
import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.jobs.views import JOB_KEYS
from switchboard.source import ERROR_HEADER
from tests.integration.clowder_events import encoded, expected_job, properties
from tests.integration.conftest import Wiring, running, wait_for
from tests.integration.simulated_extractor import SimulatedExtractor, update_body

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)  # after any sent_at


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def reply_queue(wiring: Wiring) -> Iterator[str]:
    """Clowder's reply queue for this test (`clowder.<instance>`), deleted afterwards."""
    name = f"clowder.it-{uuid.uuid4().hex[:10]}"
    with wiring.channel() as channel:
        channel.queue_declare(name, durable=True)
    yield name
    with wiring.channel() as channel:
        channel.queue_delete(name)


@pytest.fixture
def extractor(wiring: Wiring) -> SimulatedExtractor:
    return SimulatedExtractor(wiring.uri, wiring.extractor)


def submit(wiring: Wiring, n: int, reply_queue: str) -> str:
    """Publish Clowder's event `n` (replies to `reply_queue`); the job id it gets."""
    wiring.publish_raw(encoded(n), **{**properties(n), "reply_to": reply_queue})
    return expected_job(n, wiring.extractor)


def job_status(wiring: Wiring, job_id: str) -> str | None:
    rows = wiring.query(f"SELECT status FROM jobs WHERE job_id = '{job_id}'")
    return rows[0][0] if rows else None


def timeline(wiring: Wiring, job_id: str) -> list[tuple[str, str]]:
    return wiring.query(
        f"SELECT status, source FROM job_updates WHERE job_id = '{job_id}' ORDER BY at, id"
    )


def cli_json(wiring: Wiring, *args: str) -> object:
    result = CliRunner().invoke(
        main, [*args, "--json", "--database", wiring.database_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def publish_status(wiring: Wiring, body: bytes, correlation_id: str) -> None:
    """Publish straight to our status queue (declared as the daemon declares it)."""
    with wiring.channel() as channel:
        channel.queue_declare(wiring.queue + ".status", durable=True)
        props = pika.BasicProperties(delivery_mode=2, correlation_id=correlation_id)
        channel.basic_publish("", wiring.queue + ".status", body, props)


def forwarded_rows(wiring: Wiring) -> int:
    return wiring.query("SELECT count(*) FROM submissions WHERE via = 'status-relay'")[0][0]


def test_a_successful_job_has_its_timeline_and_its_updates_reach_clowder_unchanged(
    wiring, extractor, reply_queue, root_logging_restored
):
    job = submit(wiring, 1, reply_queue)
    with running(wiring.settings()):
        props, message = extractor.take()
        sent = extractor.report(
            props,
            message,
            [
                ("start", "Started processing.", at(0)),
                ("processing", "Downloading file.", at(1)),
                ("done", "Done processing.", at(3.5)),
            ],
        )
        wait_for(lambda: wiring.depth(reply_queue) == 3, 30, "three updates forwarded")
    forwarded = wiring.drain(reply_queue)
    assert [body for _, body in forwarded] == [json.loads(b) for b in sent]
    assert {p.correlation_id for p, _ in forwarded} == {"corr-1"}
    assert {p.delivery_mode for p, _ in forwarded} == {2}
    shown = cli_json(wiring, "job", job)
    assert isinstance(shown, dict)
    assert [(e["status"], e["source"]) for e in shown["timeline"]] == [
        ("submitted", "relay"),
        ("started", "extractor"),
        ("processing", "extractor"),
        ("succeeded", "extractor"),
    ]
    assert [e["message"] for e in shown["timeline"][1:]] == [
        "Started processing.",
        "Downloading file.",
        "Done processing.",
    ]
    assert shown["timeline"][1]["at"] == at(0).isoformat()
    assert (shown["status"], shown["elapsed_s"]) == ("succeeded", 3.5)
    assert (shown["started_at"], shown["finished_at"]) == (at(0).isoformat(), at(3.5).isoformat())
    listed = cli_json(wiring, "jobs")
    assert isinstance(listed, list)
    assert [tuple(j) for j in listed] == [JOB_KEYS]
    assert listed[0]["job_id"] == job and listed[0]["target"] == wiring.extractor


def test_a_job_check_message_ignores_stays_skipped_after_the_done_that_follows(
    wiring, extractor, reply_queue
):
    job = submit(wiring, 2, reply_queue)
    with running(wiring.settings()):
        props, message = extractor.take()
        steps = [("start", "Started.", at(0)), ("skip", "Not for me.", at(1))]
        extractor.report(props, message, [*steps, ("done", "Done processing.", at(2))])
        wait_for(lambda: len(timeline(wiring, job)) == 4, 30, "four timeline rows")
    assert job_status(wiring, job) == "skipped"
    assert timeline(wiring, job)[-2:] == [("skipped", "extractor"), ("succeeded", "extractor")]


def test_a_job_that_aborts_with_an_error_fails(wiring, extractor, reply_queue):
    job = submit(wiring, 3, reply_queue)
    with running(wiring.settings()):
        props, message = extractor.take()
        extractor.report(props, message, [("start", "Started.", at(0)), ("error", "boom", at(2))])
        wait_for(lambda: job_status(wiring, job) == "failed", 30, "the job to fail")
    [(latest,)] = wiring.query(f"SELECT latest_message FROM jobs WHERE job_id = '{job}'")
    assert latest == "boom"


def test_a_retried_job_is_followed_after_pyclowder_drops_its_correlation_id(
    wiring, extractor, reply_queue
):
    job = submit(wiring, 4, reply_queue)
    with running(wiring.settings()):
        props, message = extractor.take()
        extractor.report(props, message, [("start", "Started.", at(0))])
        extractor.report(props, message, [("retry", "(#1) flaky", at(1))])
        extractor.resubmit(props, message)
        again_props, again = extractor.take()
        assert again_props.correlation_id is None and again["retry_count"] == 1
        extractor.report(
            again_props, again, [("start", "Started.", at(2)), ("done", "Done.", at(5))]
        )
        wait_for(lambda: job_status(wiring, job) == "succeeded", 30, "the job to succeed")
    assert [s for s, _ in timeline(wiring, job)] == [
        "submitted",
        "started",
        "resubmitted",
        "started",
        "succeeded",
    ]
    [(started, finished)] = wiring.query(
        f"SELECT started_at, finished_at FROM jobs WHERE job_id = '{job}'"
    )
    assert (started, finished) == (at(0), at(5))


def test_redelivered_and_late_updates_after_the_end_change_nothing(wiring, extractor, reply_queue):
    job = submit(wiring, 5, reply_queue)
    with running(wiring.settings()):
        props, message = extractor.take()
        steps = [("start", "Started.", at(0)), ("done", "Done.", at(1))]
        extractor.report(props, message, steps)
        extractor.report(props, message, steps)  # the same updates again, byte for byte
        extractor.report(props, message, [("processing", "late", at(9))])
        wait_for(lambda: len(timeline(wiring, job)) == 4, 30, "the late update")
        wait_for(lambda: wiring.depth(wiring.queue + ".status") == 0, 30, "all acked")
    assert job_status(wiring, job) == "succeeded"
    assert [s for s, _ in timeline(wiring, job)] == [
        "submitted",
        "started",
        "succeeded",
        "processing",
    ]
    assert forwarded_rows(wiring) == 3  # each distinct update relayed once


def test_an_update_for_no_job_we_know_is_kept_as_an_orphan(
    wiring, reply_queue, root_logging_restored
):
    stranger = update_body({"id": "f-x", "jobid": "not-ours"}, "start", "Hello.", at(0))
    with running(wiring.settings()):
        publish_status(wiring, json.dumps(stranger).encode(), "corr-unknown")
        wait_for(
            lambda: wiring.query("SELECT count(*) FROM orphan_updates")[0][0] == 1,
            30,
            "the orphan",
        )
    [orphan] = cli_json(wiring, "jobs", "--orphans")  # type: ignore[misc]
    assert (orphan["correlation_id"], orphan["named_job_id"]) == ("corr-unknown", "not-ours")
    assert (orphan["status"], orphan["body"]) == ("started", stranger)


def test_a_malformed_status_message_is_dead_lettered_intact(wiring):
    with running(wiring.settings()):
        publish_status(wiring, b"{not json", "c-bad")
        error_queue = f"error.{wiring.queue}"
        wait_for(lambda: wiring.depth(error_queue) == 1, 30, "the dead letter")
    [(props, body)] = wiring.drain(f"error.{wiring.queue}")
    assert body == b"{not json"
    assert props.correlation_id == "c-bad"
    assert "status update is not UTF-8 JSON" in props.headers[ERROR_HEADER]


def test_clowder_v2_gets_only_updates_of_jobs_clowder_issued(wiring, extractor, reply_queue):
    ours = submit(wiring, 6, reply_queue)
    issued = submit(wiring, 7, reply_queue)
    with running(wiring.settings(clowder_version=2)):
        first = extractor.take()
        second = extractor.take()
        by_job = {first[1]["jobid"]: first, second[1]["jobid"]: second}
        clowder_id = "65a1f0c2e4b0a1b2c3d4e5f7"
        wiring.query(  # as a REST submission would have stored Clowder's answer
            f"UPDATE jobs SET clowder_job_id = '{clowder_id}' WHERE job_id = '{issued}'"
            " RETURNING job_id"
        )
        props, message = by_job[ours]
        extractor.report(props, message, [("done", "Done.", at(1))])
        props, message = by_job[issued]
        sent = extractor.report(props, {**message, "jobid": clowder_id}, [("done", "Done.", at(1))])
        wait_for(lambda: wiring.depth(reply_queue) == 1, 30, "the issued job's update")
        wait_for(lambda: job_status(wiring, ours) == "succeeded", 30, "our job to end")
    [(props, body)] = wiring.drain(reply_queue)
    assert body == json.loads(sent[0]) and body["job_id"] == clowder_id
    assert forwarded_rows(wiring) == 1
