"""Dead letters and recording on the real RabbitMQ: list, redrive with headers kept, record."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pika
import pytest
from click.testing import CliRunner, Result

from switchboard.cli import main
from switchboard.store.migrate import upgrade
from switchboard.store.operator_sql import actions_for
from switchboard.store.sql import SqlStore
from switchboard.traffic import read_records
from tests.integration.clowder_events import encoded, file_added, properties
from tests.integration.conftest import running, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def cli(wiring, *args: str) -> Result:
    env = {
        "RABBITMQ_URI": wiring.uri,
        "SWITCHBOARD_QUEUE": wiring.queue,
        "SWITCHBOARD_DATABASE_URL": wiring.database_url,
    }
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def dead_letter(wiring, n: int, reason: str) -> None:
    """A message as the daemon dead-letters it: intact, with its reason and routing key."""
    headers = {
        "x-switchboard-error": reason,
        "x-switchboard-original-routing-key": "clowder.dataset.file.added",
        "x-switchboard-delays": 5,
        "x-custom": "kept",
    }
    props = pika.BasicProperties(**properties(n), message_id=f"dead-{n}", headers=headers)
    with wiring.channel() as channel:
        channel.queue_declare(f"error.{wiring.queue}", durable=True)
        channel.queue_declare(wiring.queue, durable=True)
        channel.basic_publish("", f"error.{wiring.queue}", encoded(n), props)


def test_dead_letters_list_shows_them_and_leaves_them_in_place(wiring) -> None:
    dead_letter(wiring, 1, "processing failed: boom")
    dead_letter(wiring, 2, "delayed 5 times waiting for Clowder")
    listed = cli(wiring, "dead-letters", "list")
    assert "dead-1  clowder.dataset.file.added  processing failed: boom" in listed.output
    assert "2 dead letter(s)" in listed.output
    as_json = cli(wiring, "dead-letters", "list", "--json")
    [first, second] = [json.loads(line) for line in as_json.output.splitlines()]
    assert first["id"] == "dead-1" and first["headers"]["x-custom"] == "kept"
    assert second["body"]["msgid"] == "msg-00000002"
    assert wiring.depth(f"error.{wiring.queue}") == 2


def test_redrive_moves_the_chosen_ones_back_keeping_headers_and_logs_who(wiring) -> None:
    upgrade(wiring.database_url)
    for n in (1, 2, 3):
        dead_letter(wiring, n, f"reason {n}")
    result = cli(wiring, "dead-letters", "redrive", "dead-1", "dead-3", "--who", "ada")
    assert "2 dead letter(s) redriven" in result.output
    again = cli(wiring, "dead-letters", "redrive", "dead-1", "--who", "ada")
    assert "0 dead letter(s) redriven" in again.output  # already moved: nothing to do
    moved = wiring.drain(wiring.queue)
    assert sorted(p.message_id for p, _ in moved) == ["dead-1", "dead-3"]
    headers = moved[0][0].headers
    assert headers["x-custom"] == "kept"
    assert headers["x-switchboard-original-routing-key"] == "clowder.dataset.file.added"
    assert headers["x-switchboard-redriven-by"] == "ada"
    assert "x-switchboard-delays" not in headers  # a fresh allowance of waits for Clowder
    assert [p.message_id for p, _ in wiring.drain(f"error.{wiring.queue}")] == ["dead-2"]
    store = SqlStore(wiring.database_url)
    try:
        [logged] = actions_for(store, "dead-1")
    finally:
        store.close()
    assert (logged.who, logged.action, logged.detail["reason"]) == ("ada", "redrive", "reason 1")


def test_a_redriven_event_is_processed_by_the_daemon(wiring) -> None:
    dead_letter(wiring, 7, "processing failed: a bug since fixed")
    with running(wiring.settings()):
        cli(wiring, "dead-letters", "redrive", "--all", "--who", "ada")
        wait_for(lambda: wiring.statuses().get("sent") == 1, 60, "the redriven event's job")
    [(_, body)] = wiring.drain(wiring.extractor)
    assert body["id"] == file_added(7)["id"]


def test_record_copies_live_traffic_from_a_tap_without_touching_the_input_queue(
    wiring, tmp_path
) -> None:
    exchange = f"sbtest-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "recorded.jsonl"
    with wiring.channel() as channel:
        channel.exchange_declare(exchange, exchange_type="topic", auto_delete=True)
        channel.queue_declare(wiring.queue, durable=True)
        channel.queue_bind(wiring.queue, exchange, "*.dataset.file.added")
    done: list[Result] = []
    recorder = threading.Thread(
        target=lambda: done.append(
            cli(
                wiring,
                "record",
                str(out),
                "--count",
                "3",
                "--exchange",
                exchange,
                "--timeout",
                "30",
            )
        )
    )
    recorder.start()
    try:

        def published_all() -> bool:
            # publish until the tap is bound (its queue appears only once `record` runs)
            with wiring.channel() as channel:
                channel.basic_publish(
                    exchange,
                    "clowder.dataset.file.added",
                    encoded(len(done) + 1),
                    pika.BasicProperties(**properties(1)),
                )
            time.sleep(0.2)
            return not recorder.is_alive()

        wait_for(published_all, 60, "record to take 3 messages")
    finally:
        recorder.join(timeout=60)
    assert "3 message(s) recorded" in done[0].output
    records = [r for _, r in read_records(out)]
    assert len(records) == 3
    assert records[0]["routing_key"] == "clowder.dataset.file.added"
    assert records[0]["body"]["routing_key"] == "clowder.dataset.file.added"
    assert wiring.depth(wiring.queue) >= 3  # the input queue got every message as well
    with wiring.channel() as channel:
        channel.exchange_delete(exchange)
