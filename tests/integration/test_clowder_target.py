"""The daemon submitting through Clowder's REST API (a local stand-in) and asking it for names."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from switchboard.cli import main
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
