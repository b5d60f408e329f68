"""Log lines are JSON off a terminal and never carry secrets."""

import json
import logging

from switchboard.logs import JsonFormatter, scrub


def test_passwords_in_broker_and_database_urls_are_scrubbed():
    text = scrub("amqp://guest:hunter2@h/%2f and postgresql+psycopg://sb:pw9@db:5432/sb")
    assert "hunter2" not in text and "pw9" not in text
    assert "amqp://guest:***@h/%2f" in text


def test_api_keys_in_query_strings_and_bodies_are_scrubbed():
    text = scrub('GET /api/datasets/1?key=abc123&x=1 {"secretKey": "s3cr3t"}')
    assert "abc123" not in text and "s3cr3t" not in text


def test_json_formatter_emits_one_object_with_extra_fields():
    record = logging.LogRecord("switchboard", logging.INFO, __file__, 1, "batch", (), None)
    record.events = 3
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "batch"
    assert entry["events"] == 3
    assert entry["level"] == "info"
