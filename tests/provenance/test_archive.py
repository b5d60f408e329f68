"""The event archive: each consumed event with its outcome, in its batch's transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from switchboard.app import RuleLoader
from switchboard.cli import main
from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.provenance.archive import ArchivingIntake, EventArchive, archive_table
from switchboard.provenance.version_store import activations_of
from switchboard.rules import load_rules
from switchboard.rules.legacy import LegacyContext
from switchboard.settings import Settings
from switchboard.store.sql import SqlStore
from switchboard.store.statements import submissions
from switchboard.testing import ListDelivery
from tests.integration.clowder_events import RULES_YAML, expected_job, record
from tests.provenance.helpers import DAY

EXTRACTOR = "test.ext"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yaml").write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    return folder


@pytest.fixture
def engine(rules_dir: Path) -> Iterator[Engine]:
    made = Engine(load_rules([str(rules_dir)]))
    yield made
    made.close()


def archive_rows(store: SqlStore) -> list[Any]:
    with store.engine.connect() as connection:
        return connection.execute(select(archive_table).order_by(archive_table.c.id)).all()


def deliveries(*records: dict[str, Any]) -> list[ListDelivery]:
    return [ListDelivery.from_record(tag, r) for tag, r in enumerate(records, start=1)]


def test_a_processed_event_is_archived_with_its_outcome_and_version(
    sql_store: SqlStore, engine: Engine, rules_dir: Path
) -> None:
    from switchboard.provenance.versions import version_of

    archive = EventArchive(sql_store)
    version = archive.activate(version_of([str(rules_dir)]), "start")
    processor = Processor(engine, sql_store, extractor_message, archive=archive)
    processor.process(deliveries(record(1), record(2, name="notes.txt")))

    matched, unrouted = archive_rows(sql_store)
    assert (matched.message_id, matched.rule_version, matched.status) == (
        "msg-00000001",
        version,
        "processed",
    )
    assert matched.outcome["matched"] == [
        {"rule": "tif-to-ext", "reasons": ["file.name suffix '.tif': held"]}
    ]
    assert [s["job_id"] for s in matched.outcome["submissions"]] == [expected_job(1, EXTRACTOR)]
    assert matched.files_seen == 1
    assert unrouted.outcome == {"version": version}  # nothing matched: nothing more is kept
    assert unrouted.files_seen == 2


def test_the_archived_body_and_fields_keep_no_secret(sql_store: SqlStore, engine: Engine) -> None:
    archive = EventArchive(sql_store)
    Processor(engine, sql_store, extractor_message, archive=archive).process(
        deliveries(record(1, secret_key="s3cr3t-key-value"))
    )
    (row,) = archive_rows(sql_store)
    assert "s3cr3t" not in row.body
    assert "s3cr3t" not in json.dumps(row.event)
    assert json.loads(row.body)["msgid"] == "msg-00000001"


def test_a_redelivered_event_is_not_archived_twice(sql_store: SqlStore, engine: Engine) -> None:
    processor = Processor(engine, sql_store, extractor_message, archive=EventArchive(sql_store))
    processor.process(deliveries(record(1)))
    processor.process(deliveries(record(1)))
    assert [r.message_id for r in archive_rows(sql_store)] == ["msg-00000001"]


def test_a_dead_lettered_message_is_archived_with_its_reason(
    sql_store: SqlStore, engine: Engine
) -> None:
    archive = EventArchive(sql_store)
    processor = Processor(engine, sql_store, extractor_message, archive=archive)
    intake = ArchivingIntake(processor.router, archive)
    broken = ListDelivery(1, b'{"msgid": "broken-1", "secretKey": "hidden-value-1"', {})
    result = intake.process([broken])
    assert len(result.malformed) == 1
    (row,) = archive_rows(sql_store)
    digest = hashlib.sha256(broken.body).hexdigest()
    assert (row.message_id, row.status) == (f"sha256:{digest}", "dead-lettered")
    assert row.outcome["dead_letter"] == result.malformed[0][1]
    assert "hidden-value-1" not in row.body


class FailingArchive(EventArchive):
    """Writes its rows, then fails: the batch's transaction must take them back."""

    def record(self, *args: Any) -> None:
        super().record(*args)
        raise RuntimeError("archive broke")


def test_the_archive_is_written_in_the_batch_transaction(
    sql_store: SqlStore, engine: Engine
) -> None:
    archive = FailingArchive(sql_store)
    processor = Processor(engine, sql_store, extractor_message, archive=archive)
    result = processor.process(deliveries(record(1)))
    assert len(result.poison) == 1  # the event's transaction rolled back, archive rows with it
    assert archive_rows(sql_store) == []
    with sql_store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(submissions)).scalar() == 0


def test_the_daemon_loader_stores_a_version_at_start_and_at_each_reload(
    sql_store: SqlStore, rules_dir: Path
) -> None:
    settings = Settings(rules=(str(rules_dir),))
    archive = EventArchive(sql_store)
    loader = RuleLoader(settings, LegacyContext.from_settings(settings), archive=archive)
    processor = Processor(loader.engine(), sql_store, extractor_message, archive=archive)
    first = archive.version
    (rules_dir / "more.yaml").write_text(
        "- name: txt-to-notes\n  when: {file.name: {suffix: .txt}}\n  submit: {extractor: n}\n"
    )
    loader.reload(processor)
    processor.process(deliveries(record(3, name="a.txt")))
    processor.engine.close()
    with sql_store.engine.connect() as connection:
        reasons = [(v, why) for _, v, why in activations_of(connection)]
    assert reasons == [(first, "start"), (archive.version, "reload")]
    assert first != archive.version
    (row,) = archive_rows(sql_store)
    assert row.rule_version == archive.version
    assert [m["rule"] for m in row.outcome["matched"]] == ["txt-to-notes"]


def test_replay_with_a_database_archives_every_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    result = CliRunner().invoke(main, ["replay", str(DAY), "--database", url])
    assert result.exit_code == 0, result.output
    store = SqlStore(url)
    try:
        rows = archive_rows(store)
    finally:
        store.close()
    assert len(rows) == 203
    assert {r.status for r in rows} == {"processed"}
    assert sum(len(r.outcome.get("submissions", [])) for r in rows) == 74


def test_a_body_nested_too_deep_to_walk_is_archived_as_scrubbed_text(
    sql_store: SqlStore, engine: Engine
) -> None:
    archive = EventArchive(sql_store)
    processor = Processor(engine, sql_store, extractor_message, archive=archive)
    deep = b'{"secretKey": "hidden-value-2", "a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    result = ArchivingIntake(processor.router, archive).process([ListDelivery(1, deep, {})])
    assert len(result.malformed) == 1
    (row,) = archive_rows(sql_store)
    assert row.status == "dead-lettered"
    assert "hidden-value-2" not in row.body


@pytest.mark.postgres
def test_an_archive_copy_refused_by_a_lock_timeout_is_an_outage_not_a_bad_event(
    pg_url: str, pg_schema: str, engine: Engine
) -> None:
    """The COPY runs on psycopg's own connection, so its errors come unwrapped by SQLAlchemy;
    one that means "not now" (here: lock not available) must still hold the batch back for a
    retry, not dead-letter its event as if the event were at fault."""
    import psycopg
    from sqlalchemy import event

    from switchboard.errors import StoreError
    from switchboard.store.migrate import upgrade
    from tests.conftest import PG_CONNINFO

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    processor = Processor(engine, store, extractor_message, archive=EventArchive(store))

    def short_lock_timeout(dbapi_connection: Any, _record: Any) -> None:
        # only the archive's table is locked: the COPY is the first statement to wait on it
        dbapi_connection.execute("SET lock_timeout = '100ms'")
        dbapi_connection.commit()

    event.listen(store.engine, "connect", short_lock_timeout)
    try:
        with psycopg.connect(PG_CONNINFO) as operator:  # e.g. a maintenance job on the archive
            operator.execute(f'LOCK TABLE "{pg_schema}".event_archive IN ACCESS EXCLUSIVE MODE')
            with pytest.raises(StoreError, match="LockNotAvailable"):
                processor.process(deliveries(record(1)))
        result = processor.process(deliveries(record(1)))  # the broker's redelivery
        assert (len(result.committed), result.poison) == (1, [])
        assert [row.message_id for row in archive_rows(store)] == ["msg-00000001"]
    finally:
        event.remove(store.engine, "connect", short_lock_timeout)
        store.close()


def test_a_body_text_prepared_ahead_is_taken_by_that_event_only(sql_store: SqlStore) -> None:
    """`prepare` runs while the database works on a batch's start; `record` then takes the
    text made for the very same event (an equal one of another delivery gets its own)."""
    from switchboard.events import parse_event
    from switchboard.provenance.records import body_text

    body = {"id": "f-1", "datasetId": "ds-1", "filename": "a.bin", "secretKey": "hidden-1"}
    raw = json.dumps(body).encode()
    key = "clowder.dataset.file.added"
    event, twin = parse_event(raw, {}, routing_key=key), parse_event(raw, {}, routing_key=key)
    archive = EventArchive(sql_store)
    archive.prepare([event])
    prepared = archive._text(event)
    assert archive._text(event) is prepared  # made once, ahead
    again = archive._text(twin)
    assert again == prepared == body_text(event.body, event.raw)
    assert again is not prepared and "hidden-1" not in again
