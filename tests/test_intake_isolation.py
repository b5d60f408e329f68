"""One event's failure while it is parsed, hashed or stored stays with that event (issue 7, 1-2)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

import rule_utils
from switchboard import processor as processor_module
from switchboard.engine import Engine
from switchboard.errors import MalformedEvent, StoreError
from switchboard.events import parse_event
from switchboard.failures import describe_failure
from switchboard.limits import MAX_ID_BYTES, MAX_NESTING
from switchboard.model import submit
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import RuleSet, load_rules, rule
from switchboard.store.errors import is_outage_sqlstate
from switchboard.store.models import ProcessedMessage
from switchboard.store.sql import SqlStore
from switchboard.testing import ListDelivery
from tests.conftest import FakeClock
from tests.integration.clowder_events import RULES_YAML, expected_job, file_added, record

EXTRACTOR = "test.ext"
# 3,200 characters PostgreSQL cannot compress below btree's limit (a run of one letter it can)
INCOMPRESSIBLE = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(50))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=EXTRACTOR, via="amqp"))
    made = Engine(load_rules([str(rules)]))
    yield made
    made.close()


def nested_without_msgid(levels: int) -> bytes:
    """A file event with no msgid or jobid (so its id is a content hash) and a deep field."""
    body = file_added(1)
    del body["msgid"], body["jobid"]
    text = json.dumps(body)[:-1] + ', "deep": ' + "[" * levels + "]" * levels + "}"
    return text.encode()


def batch(*bodies: bytes | dict[str, Any]) -> list[ListDelivery]:
    return [ListDelivery.from_record(tag, b) for tag, b in enumerate(bodies, start=1)]


@pytest.mark.parametrize("levels", [978, 100_000])
def test_deeply_nested_body_without_msgid_is_dead_lettered_and_the_next_event_goes_through(
    sql_store: SqlStore, engine: Engine, levels: int
) -> None:
    result = Processor(engine, sql_store, extractor_message).process(
        batch(nested_without_msgid(levels), record(2))
    )
    ((refused, reason),) = result.malformed
    assert refused.delivery_tag == 1
    assert "nested" in reason and "\n" not in reason
    assert [d.delivery_tag for d in result.committed] == [2]
    assert [s.job_id for s in result.submissions] == [expected_job(2, EXTRACTOR)]


def test_a_body_nested_within_the_limit_and_without_msgid_gets_a_content_hash_id() -> None:
    event = parse_event(nested_without_msgid(MAX_NESTING - 2))
    assert event.message_id.startswith("sha256:")


def test_an_unexpected_exception_while_parsing_one_event_dead_letters_only_that_event(
    sql_store: SqlStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = processor_module.parse_event
    broken = json.dumps(file_added(1)).encode()

    def parse(body: bytes, *args: Any, **kwargs: Any) -> Any:
        if body == broken:
            raise RuntimeError("a bug in parsing\nwith a second line")
        return real(body, *args, **kwargs)

    monkeypatch.setattr(processor_module, "parse_event", parse)
    result = Processor(engine, sql_store, extractor_message).process(batch(broken, record(2)))
    ((refused, reason),) = result.malformed
    assert refused.delivery_tag == 1
    assert reason == "parsing failed: RuntimeError: a bug in parsing"
    assert [d.delivery_tag for d in result.committed] == [2]


@pytest.mark.parametrize("field", ["msgid", "jobid", "id", "datasetId"])
def test_an_id_over_the_limit_is_refused_at_parse_naming_the_field(field: str) -> None:
    body = file_added(1)
    if field == "jobid":
        del body["msgid"]
    body[field] = "x" * (MAX_ID_BYTES + 1)
    with pytest.raises(MalformedEvent, match=f'"{field}" is 513 bytes long, over the 512-byte'):
        parse_event(json.dumps(body).encode())


def test_an_id_at_the_limit_in_multibyte_characters_is_measured_in_bytes() -> None:
    body = file_added(1)
    body["msgid"] = "é" * (MAX_ID_BYTES // 2)  # 512 bytes: allowed
    assert parse_event(json.dumps(body).encode()).message_id == body["msgid"]
    body["msgid"] += "é"
    with pytest.raises(MalformedEvent, match="514 bytes long"):
        parse_event(json.dumps(body).encode())


def test_a_manual_dataset_submission_with_an_overlong_file_id_is_refused() -> None:
    body = {
        "id": "d1",
        "datasetId": "d1",
        "action": "manual-submission",
        "source": {"id": {"id": "f" * 3000}, "extra": {"filename": "a.tif"}},
    }
    with pytest.raises(MalformedEvent, match=re.escape('"source.id.id" is 3000 bytes long')):
        parse_event(json.dumps(body).encode())


def test_an_overlong_msgid_is_dead_lettered_and_the_rest_of_the_batch_commits(
    sql_store: SqlStore, engine: Engine
) -> None:
    long = file_added(1)
    long["msgid"] = "m" * 2800
    result = Processor(engine, sql_store, extractor_message).process(
        batch(record(0), long, record(2))
    )
    ((refused, reason),) = result.malformed
    assert refused.delivery_tag == 2 and "over the 512-byte limit" in reason
    assert sorted(d.delivery_tag for d in result.committed) == [1, 3]


def _collecting(tmp_path: Path, key: str) -> Engine:
    rules = tmp_path / "collect.yaml"
    rules.write_text(
        f"""\
- name: gather
  when: {{file.name: {{suffix: ".tif"}}}}
  collect:
    key: "{key}"
    member: "{{file.id}}"
    until: {{count: 100}}
  submit: {{extractor: test.gather}}
"""
    )
    return Engine(load_rules([str(rules)]))


def test_a_rendered_collection_key_over_the_limit_is_that_rules_error_for_that_event(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    engine = _collecting(tmp_path, "{file.name}")
    try:
        long_name = "p" * 600 + ".tif"
        result = Processor(engine, sql_store, extractor_message).process(
            batch(record(1, name=long_name), record(2))
        )
    finally:
        engine.close()
    assert sorted(d.delivery_tag for d in result.committed) == [1, 2]
    ((rule_name, message_id, error),) = result.rule_errors
    assert (rule_name, message_id) == ("gather", "msg-00000001")
    assert "collection key '{file.name}' rendered to 604 bytes, over the 512-byte limit" in error
    with sql_store.unit_of_work() as uow:
        assert uow.progress.count("plot-00002_left.tif") == 1


@pytest.mark.postgres
def test_a_value_postgresql_cannot_index_dead_letters_that_event_instead_of_retrying_forever(
    pg_url: str, pg_schema: str
) -> None:
    """A Python rule writes a key over btree's limit (SQLSTATE 54000): not an outage."""

    @rule
    def huge_key(event, dataset):
        key = INCOMPRESSIBLE if event.message_id == "msg-00000002" else "small"
        rule_utils.add_member("huge_key", key, event.file.id)
        return submit("test.huge", resource="file")

    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    engine = Engine(RuleSet([huge_key]))
    try:
        result = Processor(engine, store, extractor_message).process(
            batch(record(1), record(2), record(3))
        )
    finally:
        engine.close()
        store.close()
    ((poisoned, reason),) = result.poison
    assert poisoned.delivery_tag == 2
    assert "ProgramLimitExceeded" in reason and "index row size" in reason
    assert "\n" not in reason and "INSERT" not in reason
    assert sorted(d.delivery_tag for d in result.committed) == [1, 3]


@pytest.mark.postgres
def test_an_index_size_error_is_raised_as_itself_not_as_store_error(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    row = {"message_id": INCOMPRESSIBLE, "processed_at": FakeClock()()}
    try:
        with pytest.raises(Exception) as raised, store.unit_of_work() as uow:
            uow.session.execute(insert(ProcessedMessage.__table__).values(**row))
    finally:
        store.close()
    assert not isinstance(raised.value, StoreError)
    assert "index row size" in describe_failure(raised.value)


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [
        ("08006", True),  # connection failure
        ("08P01", True),  # protocol violation
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock
        ("57P01", True),  # admin shutdown
        ("53100", True),  # disk full
        ("54000", False),  # program limit exceeded: index row size
        ("23505", False),  # unique violation
        ("22001", False),  # string data right truncation
        ("42P01", False),  # undefined table
    ],
)
def test_only_connection_serialization_and_server_state_sqlstates_are_outages(
    sqlstate: str, outage: bool
) -> None:
    assert is_outage_sqlstate(sqlstate) is outage


def test_a_locked_sqlite_database_is_still_an_outage_but_a_too_big_value_is_not() -> None:
    import sqlite3

    from sqlalchemy import exc as sa_exc

    from switchboard.store.errors import is_connection_failure

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5  # type: ignore[attr-defined]
    too_big = sqlite3.DataError("string or blob too big")
    too_big.sqlite_errorcode = 18  # type: ignore[attr-defined]
    assert is_connection_failure(sa_exc.OperationalError("x", {}, busy))
    assert not is_connection_failure(sa_exc.DataError("x", {}, too_big))
