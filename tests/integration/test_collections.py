"""Collections on the real RabbitMQ and PostgreSQL: exactly one firing, whatever happens."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import pika
import pytest

from switchboard.app import build_app
from switchboard.engine import Engine
from switchboard.jobids import job_id
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import load_rules
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.submissions import COLLECTION_RESOURCE
from switchboard.testing import ListDelivery
from tests.collections.helpers import mosaic_rule
from tests.integration.clowder_events import DATASET, file_added, properties
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def use_rule(wiring, until: str, **kwargs: str) -> None:
    wiring.rules.write_text(mosaic_rule(until, extractor=wiring.extractor, **kwargs))


def publish_members(wiring, members: list[tuple[int, str]], *, copy: str = "") -> None:
    """Publish file events (number, dataset); `copy` makes new message ids for the same files."""
    with wiring.channel() as channel:
        channel.queue_declare(wiring.queue, durable=True)
        for n, dataset in members:
            body = file_added(n, dataset=dataset)
            body["msgid"] = f"{dataset}-{n}{'-' + copy if copy else ''}"
            props = pika.BasicProperties(**properties(n))
            channel.basic_publish("", wiring.queue, json.dumps(body).encode(), props)


def firings(wiring) -> list[tuple]:
    return wiring.query(
        "SELECT key, generation, member_count, job_id FROM collection_firings ORDER BY key"
    )


def collection_job(wiring, key: str, generation: int = 1) -> str:
    return job_id("mosaic", wiring.extractor, COLLECTION_RESOURCE, key, str(generation))


def processed(wiring) -> int:
    try:
        return wiring.query("SELECT count(*) FROM processed_messages")[0][0]
    except Exception:  # not migrated yet
        return 0


def test_a_nine_thousand_member_collection_fires_exactly_once(wiring):
    members = 9000
    use_rule(wiring, f"{{count: {members}}}", key="mosaic/day")
    # one GeoTIFF dataset per member, as on a TERRA-REF day
    publish_members(wiring, [(n, f"dataset-{n}") for n in range(members + 50)])
    with running(wiring.settings(batch_size=500)):
        wait_for(lambda: processed(wiring) == members + 50, 110, "every member to be processed")
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the firing to be sent")
    [(props, body)] = wiring.drain(wiring.extractor)
    key = "mosaic/day"
    assert props.message_id == body["job_id"] == collection_job(wiring, key)
    assert body["parameters"]["member_count"] == members
    assert body["rulechecked"] is True
    assert firings(wiring) == [(key, 1, members, props.message_id)]
    manifest = body["parameters"]["manifest_id"]
    assert wiring.query(
        f"SELECT count(*) FROM manifest_members WHERE manifest_id = '{manifest}'"
    ) == [(members,)]


def test_three_daemon_processes_fire_every_collection_exactly_once(wiring, spawn):
    per_key, keys, rounds = 25, 12, 5
    use_rule(wiring, f"{{count: {per_key}}}")
    upgrade(wiring.database_url)
    daemons = [spawn() for _ in range(3)]
    expected: set[str] = set()
    for round_ in range(rounds):
        datasets = [f"round{round_}-dataset{k:02d}" for k in range(keys)]
        numbers = range(round_ * 10_000, round_ * 10_000 + per_key)
        # interleaved so the daemons contend for every collection at once
        members = [(n, d) for n in numbers for d in datasets]
        publish_members(wiring, members)
        publish_members(wiring, members[::7], copy="again")  # duplicate members
        expected |= {collection_job(wiring, f"mosaic/{d}") for d in datasets}
        want = len(expected)
        try:
            wait_for(lambda: len(firings(wiring)) == want, 90, f"round {round_}'s firings")  # noqa: B023 (called before the loop moves on)
        except BaseException:
            print(wiring.query("SELECT rule, key, member_count FROM collections"))
            for daemon in daemons:
                print(daemon.output()[-3000:])
            raise
    wait_for(lambda: wiring.statuses().get("sent") == len(expected), 60, "every firing sent")
    wait_for(lambda: wiring.depth(wiring.queue) == 0, 60, "the input queue to empty")
    for daemon in daemons:
        assert daemon.terminate() == 0, daemon.output()
    found = firings(wiring)
    assert {row[3] for row in found} == expected
    assert {row[2] for row in found} == {per_key}  # duplicates never counted
    assert {row[1] for row in found} == {1}
    messages = wiring.drain(wiring.extractor)
    published = Counter(props.message_id for props, _ in messages)
    assert set(published) == expected
    # No crash here, so nothing may be published twice: a repeat would need a relay's 3 s lease
    # to expire between its publish and its mark_sent (the at-least-once window, exercised by
    # the kill -9 tests), which three healthy daemons never come near.
    assert len(messages) == len(expected), [m for m, n in published.items() if n > 1]
    assert wiring.query("SELECT count(*) FROM submissions") == [(len(expected),)]


def test_a_crash_between_commit_and_publish_still_sends_the_firing_once(wiring, spawn):
    use_rule(wiring, "{count: 20}")
    upgrade(wiring.database_url)
    publish_members(wiring, [(n, DATASET) for n in range(20)])
    # A daemon that commits the whole batch and dies before its relay runs or anything is acked.
    store = SqlStore(wiring.database_url)
    engine = Engine(load_rules([wiring.rules]))
    try:
        with wiring.channel() as channel:
            deliveries = []
            for method, props, body in channel.consume(wiring.queue, inactivity_timeout=0.5):
                if method is None:
                    break
                headers = {"reply_to": props.reply_to, "correlation_id": props.correlation_id}
                deliveries.append(ListDelivery(method.delivery_tag, body, headers))
                if len(deliveries) == 20:
                    break
            result = Processor(engine, store, extractor_message).process(deliveries)
            assert len(result.submissions) == 1 and len(result.committed) == 20
        # the channel closed without acks: RabbitMQ puts all 20 back, as after a crash
    finally:
        engine.close()
        store.close()
    assert wiring.statuses() == {"pending": 1}
    assert wiring.depth(wiring.queue) == 20

    restarted = spawn()
    wait_for(lambda: wiring.statuses().get("sent") == 1, 60, "the pending firing to be sent")
    wait_for(lambda: wiring.depth(wiring.queue) == 0, 30, "the redeliveries to be acked")
    time.sleep(0.5)  # let any (wrong) second firing reach the queue
    assert restarted.terminate() == 0, restarted.output()
    [(props, body)] = wiring.drain(wiring.extractor)
    assert props.message_id == collection_job(wiring, f"mosaic/{DATASET}")
    assert len(firings(wiring)) == 1


def test_quiet_for_fires_after_a_restart_when_its_deadline_passed_while_down(wiring):
    use_rule(wiring, "{quiet_for: 2s}")
    publish_members(wiring, [(n, DATASET) for n in range(5)])
    with running(wiring.settings()):
        wait_for(lambda: processed(wiring) == 5, 30, "the members to be processed")
    assert firings(wiring) == []  # stopped well inside the quiet period
    [(deadline,)] = wiring.query("SELECT quiet_deadline FROM collections")
    assert deadline is not None
    time.sleep(2.5)  # the deadline passes while no daemon runs
    with running(wiring.settings()):
        wait_for(lambda: wiring.statuses().get("sent") == 1, 30, "the quiet firing to be sent")
    [(props, body)] = wiring.drain(wiring.extractor)
    assert props.message_id == collection_job(wiring, f"mosaic/{DATASET}")
    assert body["parameters"]["member_count"] == 5
    assert body["datasetId"] == DATASET


def test_run_warns_at_startup_about_manifest_file_rules_without_a_manifest_dir(wiring, caplog):
    use_rule(wiring, "{count: 2}\n    manifest_file: true")
    upgrade(wiring.database_url)
    with caplog.at_level(logging.WARNING, logger="switchboard.app"):
        app = build_app(wiring.settings(manifest_dir=""))
        app.close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "switchboard.app"]
    assert "SWITCHBOARD_MANIFEST_DIR is not set" in warning and "'mosaic'" in warning
