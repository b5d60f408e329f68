"""Migration 0005: a via-ray row's options move out of its AMQP properties into `options`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from switchboard.sink_registry import as_json
from switchboard.store.engine import make_engine
from switchboard.store.migrate import alembic_config
from switchboard.store.sql import SqlStore
from tests.conftest import Database

RAY = {"entrypoint": "python -m fieldmosaic", "runtime_env": {"env_vars": {"MODE": "full"}}}


def _migrate(database: Database, revision: str) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        with engine.begin() as connection:
            if database.schema is not None:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
            config = alembic_config(database.schema)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _insert_row(database: Database, job_id: str, via: str, properties: dict) -> None:
    engine = make_engine(database.url, database.schema)
    now = datetime.now(UTC).replace(tzinfo=None)
    row = {
        "job_id": job_id,
        "rule": "r",
        "extractor": "x",
        "via": via,
        "resource_type": "dataset",
        "resource_id": "d",
        "parameters": "{}",
        "event_message_id": "m",
        "body": "{}",
        "properties": json.dumps(properties),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    columns = ", ".join(row)
    values = ", ".join(f":{k}" for k in row)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"INSERT INTO submissions ({columns}) VALUES ({values})"), row)
    finally:
        engine.dispose()


def test_migration_0005_moves_a_ray_rows_options_out_of_its_properties_into_their_column(
    empty_database: Database,
) -> None:
    _migrate(empty_database, "0004")
    _insert_row(empty_database, "ray-job", "ray", {"message_id": "ray-job", "ray": RAY})
    _insert_row(empty_database, "amqp-job", "amqp", {"message_id": "amqp-job"})

    _migrate(empty_database, "0005")

    store = SqlStore(empty_database.url, schema=empty_database.schema)
    try:
        rows = {row.submission.job_id: row for row in store.due_outbox(10)}
    finally:
        store.close()
    assert as_json(rows["ray-job"].submission.options) == RAY
    assert dict(rows["ray-job"].properties) == {"message_id": "ray-job"}
    assert dict(rows["amqp-job"].submission.options) == {}
    assert dict(rows["amqp-job"].properties) == {"message_id": "amqp-job"}
