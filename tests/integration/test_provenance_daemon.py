"""The daemon on the real RabbitMQ and PostgreSQL archives what it consumes, under its version."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def archived(wiring) -> list[tuple]:
    return wiring.query(
        "SELECT message_id, status, rule_version, outcome::text FROM event_archive ORDER BY id"
    )


def test_the_daemon_archives_events_and_dead_letters_under_the_version_it_runs(wiring):
    wiring.publish([1])
    wiring.publish_raw(b"{not json", message_id="m-broken")
    with running(wiring.settings()) as app:
        wait_for(lambda: len(archived(wiring)) == 2, 30, "two archived messages")
        first = app.loader.archive.version if app.loader.archive else None
        wiring.rules.write_text(wiring.rules.read_text().replace(".tif", ".TIF"))
        app.reload_rules()
        wiring.publish([2])
        wait_for(lambda: len(archived(wiring)) == 3, 30, "the third archived message")
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the submission to be sent")
    rows = archived(wiring)
    assert (rows[0][0], rows[0][1]) == ("msg-00000001", "processed")
    assert rows[0][2] == first
    assert json.loads(rows[0][3])["submissions"][0]["rule"] == "tif-to-ext"
    assert rows[1][1] == "dead-lettered"
    assert json.loads(rows[1][3])["dead_letter"].startswith("body is not valid JSON")
    assert rows[2][0] == "msg-00000002"
    assert rows[2][2] != first  # decided under the reloaded rules
    assert "submissions" not in json.loads(rows[2][3])  # `.TIF` does not match `_left.tif`
    reasons = wiring.query("SELECT reason FROM rule_activations ORDER BY id")
    assert reasons == [("start",), ("reload",)]

    result = CliRunner().invoke(
        main, ["explain", "--event", "msg-00000002", "--database", wiring.database_url]
    )
    assert result.exit_code == 0, result.output
    assert "closest rule: tif-to-ext" in result.output
    prov = CliRunner().invoke(
        main, ["prov", "--event", "msg-00000001", "--database", wiring.database_url]
    )
    assert prov.exit_code == 0, prov.output
    assert "event:msg-00000001" in json.loads(prov.output)["entity"]


def test_a_backfill_beside_the_running_daemon_is_sent_by_its_relay_once(wiring):
    wiring.publish([1, 2])
    new_rule = wiring.tmp / "new" / "again.yaml"
    new_rule.parent.mkdir()
    new_rule.write_text(
        "- name: tifs-again\n"
        "  when: {file.name: {suffix: .tif}}\n"
        f"  submit: {{extractor: {wiring.extractor}, resource: file}}\n"
    )
    args = ["backfill", "--rules", str(new_rule.parent), "--database", wiring.database_url]
    with running(wiring.settings()):
        wait_for(lambda: wiring.statuses().get("sent") == 2, 30, "the first two submissions")
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        assert "submitted 2, 0 already submitted" in first.output
        wait_for(lambda: wiring.statuses().get("sent") == 4, 30, "the backfilled two sent")
        again = CliRunner().invoke(main, args)
        assert "submitted 0" in again.output
    sent = wiring.drain(wiring.extractor)
    assert len(sent) == 4
    assert len({props.message_id for props, _ in sent}) == 4
