"""The daemon submitting through Clowder's REST API (a local stand-in) and asking it for names."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.delays import DELAY_COUNT_HEADER
from switchboard.source import ERROR_HEADER
from switchboard.testing import FakeClowder
from tests.integration.clowder_events import DATASET, file_id
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

RULES = """\
- name: to-clowder
  on: dataset.file.added
  when:
    dataset.name: {{prefix: "stereoTop - "}}
    file.name: {{suffix: ".tif"}}
  submit:
    extractor: {extractor}
    resource: file
    via: clowder-api
    parameters: {{mode: fast}}
"""


@pytest.fixture
def clowder(wiring):
    wiring.rules.write_text(RULES.format(extractor=wiring.extractor))
    with FakeClowder(datasets={DATASET: "stereoTop - 2017-05-01__10-20"}) as fake:
        yield fake


def settings_for(wiring, clowder):
    return wiring.settings(clowder_url=clowder.url, clowder_key=clowder.api_key)


def posts(clowder):
    return [r for r in clowder.extractions() if r.path.endswith("/extractions")]


def gets(clowder):
    return [r for r in clowder.requests if r.method == "GET"]


def test_a_clowder_api_rule_posts_an_extraction_request(wiring, clowder):
    wiring.publish([5])
    with running(settings_for(wiring, clowder)):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the submission")
    (request,) = posts(clowder)
    assert request.path == f"/api/files/{file_id(5)}/extractions"
    assert request.json == {"extractor": wiring.extractor, "parameters": {"mode": "fast"}}
    assert request.key == clowder.api_key
    assert wiring.depth(wiring.extractor) == 0  # nothing went to the queue


def test_dataset_names_are_looked_up_once_and_cached_in_the_database(wiring, clowder):
    wiring.publish([1])
    with running(settings_for(wiring, clowder)):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the first submission")
        wiring.publish([2, 3])
        wait_for(lambda: wiring.statuses().get("sent") == 3, 30, "all submissions")
    assert [r.path for r in gets(clowder)] == [f"/api/datasets/{DATASET}"]
    assert wiring.query("SELECT name FROM datasets") == [("stereoTop - 2017-05-01__10-20",)]


def test_server_errors_are_retried_until_clowder_accepts(wiring, clowder):
    wiring.publish([1])
    with running(settings_for(wiring, clowder)):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the first submission")
        clowder.fail_next(3, 503)  # the dataset's name is cached: only the POSTs fail
        wiring.publish([2])
        wait_for(lambda: wiring.statuses().get("sent") == 2, 60, "the second submission")
    assert len(posts(clowder)) == 1 + 4


def test_a_refusal_fails_the_submission_clearly_and_status_shows_it(wiring, clowder):
    wiring.publish([1])
    with running(settings_for(wiring, clowder)):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the first submission")
        clowder.fail_next(1, 404)
        wiring.publish([2])
        wait_for(lambda: wiring.statuses().get("failed") == 1, 30, "the failure")
    assert len(posts(clowder)) == 2  # a refusal is not retried
    (error,) = wiring.query("SELECT last_error FROM submissions WHERE status = 'failed'")
    assert "HTTP 404" in error[0]
    assert clowder.api_key not in error[0]
    result = CliRunner().invoke(main, ["status", "--database", wiring.database_url])
    assert result.exit_code == 0, result.output
    assert "failed 1, pending 0, sent 1" in result.output
    assert "failed (newest 1 of 1):" in result.output
    assert f"to-clowder -> {wiring.extractor} via clowder-api attempts 1: " in result.output
    assert "HTTP 404" in result.output


def test_clowder_unreachable_delays_the_event_through_the_retry_queue(wiring, clowder):
    clowder.fail_next(2, 503)  # the lookup and its one quick retry
    wiring.publish([1])
    with running(settings_for(wiring, clowder)):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the delayed event's submission")
    assert len(gets(clowder)) == 3  # two failures, then one success a retry delay later
    assert wiring.depth(f"error.{wiring.queue}") == 0
    assert wiring.query("SELECT count(*) FROM processed_messages") == [(1,)]


AMQP_BY_NAME = """\
- name: by-name
  on: dataset.file.added
  when:
    dataset.name: {{prefix: "stereoTop - "}}
  submit:
    extractor: {extractor}
    resource: file
"""
BAD_DATASET = "65a1f0a0e4b0a1b2c3d4ebad"


def test_one_dataset_failing_at_clowder_is_dead_lettered_after_max_delays_and_others_go_through(
    wiring, clowder
):
    wiring.rules.write_text(AMQP_BY_NAME.format(extractor=wiring.extractor))
    clowder.failing_datasets[BAD_DATASET] = 500
    wiring.publish([1], dataset=BAD_DATASET)
    wiring.publish([2, 3])
    settings = replace(settings_for(wiring, clowder), max_delays=2, clowder_retry_delay_s=0.2)
    error_queue = f"error.{wiring.queue}"
    with running(settings):
        wait_for(lambda: wiring.depth(error_queue) == 1, 60, "the failing event's dead letter")
        wiring.publish([4, 5], dataset="65a1f0a0e4b0a1b2c3d4e5a1")  # a dataset new to us
        clowder.datasets["65a1f0a0e4b0a1b2c3d4e5a1"] = "stereoTop - new"
        wait_for(lambda: wiring.statuses().get("sent") == 4, 30, "the other events' submissions")
    [(props, body)] = wiring.drain(error_queue)
    assert body["datasetId"] == BAD_DATASET
    reason = props.headers[ERROR_HEADER]
    assert reason.startswith("delayed 2 times waiting for Clowder: ")
    assert "HTTP 500" in reason and clowder.api_key not in reason
    assert props.headers[DELAY_COUNT_HEADER] == 2
    lookups_of_bad = [r for r in gets(clowder) if r.path == f"/api/datasets/{BAD_DATASET}"]
    assert len(lookups_of_bad) <= 2 * 3  # each try is one lookup and its quick retry
    assert wiring.depth(wiring.queue) == 0 and wiring.depth(f"retry.{wiring.queue}") == 0


def test_without_clowder_url_names_come_from_each_events_own_host(wiring, clowder):
    wiring.rules.write_text(AMQP_BY_NAME.format(extractor=wiring.extractor))
    wiring.publish([1, 2], host=clowder.url, secret_key=clowder.api_key)
    with running(wiring.settings(clowder_key="never-sent-to-event-hosts")):
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "both submissions")
    assert [(r.path, r.key) for r in gets(clowder)] == [
        (f"/api/datasets/{DATASET}", clowder.api_key)
    ]
    assert wiring.depth(wiring.extractor) == 2


@pytest.mark.parametrize("version", [1, 2])
def test_a_clowder_api_rule_submits_in_the_configured_version_and_logs_clowders_job_id(
    wiring, version, caplog
):
    wiring.rules.write_text(RULES.format(extractor=wiring.extractor))
    datasets = {DATASET: "stereoTop - 2017-05-01__10-20"}
    with FakeClowder(datasets=datasets, api_version=version) as fake:
        wiring.publish([5])
        settings = wiring.settings(
            clowder_url=fake.url, clowder_key=fake.api_key, clowder_version=version
        )
        with (
            caplog.at_level(logging.INFO, logger="switchboard.sinks.clowder_api"),
            running(settings),
        ):
            wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the submission")
    # (with Clowder v2 the job poller may also have asked for the job's summary by now)
    lookup, post = [r for r in fake.requests if not r.path.startswith("/api/v2/jobs/")]
    if version == 1:
        assert lookup.path == f"/api/datasets/{DATASET}"
        assert post.path == f"/api/files/{file_id(5)}/extractions"
        assert post.json == {"extractor": wiring.extractor, "parameters": {"mode": "fast"}}
    else:
        assert lookup.path == f"/api/v2/datasets/{DATASET}"
        assert post.path == f"/api/v2/files/{file_id(5)}/extract"
        assert post.query == {"extractorName": wiring.extractor}
        assert post.json == {"mode": "fast"}
    assert lookup.key == post.key == fake.api_key
    [clowder_job] = fake.job_ids
    [(our_job,)] = wiring.query("SELECT job_id FROM submissions")
    logged = [r.getMessage() for r in caplog.records if clowder_job in r.getMessage()]
    assert logged and our_job in logged[0]
    # and stored with the job, which the relay marked submitted
    assert wiring.query("SELECT job_id, clowder_job_id, status FROM jobs") == [
        (our_job, clowder_job, "submitted")
    ]
