"""Engines: supported databases, safe schema names, passwords kept out of text."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from switchboard.store.engine import checked_schema, dialect_of, make_engine, redacted, to_json


def test_redacted_url_hides_the_password() -> None:
    text = redacted("postgresql+psycopg://switchboard:s3cret@db.example:5432/state")

    assert text == "postgresql+psycopg://switchboard:***@db.example:5432/state"


def test_only_sqlite_and_postgresql_are_supported() -> None:
    assert dialect_of("sqlite:///x.db") == "sqlite"
    assert dialect_of("postgresql+psycopg://u@h/d") == "postgresql"
    with pytest.raises(ValueError, match="unsupported database mysql://u:\\*\\*\\*@h/d"):
        dialect_of("mysql://u:pw@h/d")


def test_schema_names_must_be_plain_identifiers() -> None:
    assert checked_schema("postgresql+psycopg://u@h/d", "t_abc123") == "t_abc123"
    with pytest.raises(ValueError, match="plain SQL identifier"):
        checked_schema("postgresql+psycopg://u@h/d", "x; DROP TABLE y")


def test_making_an_engine_connects_to_nothing() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", "t_x")

    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_json_columns_accept_read_only_mappings() -> None:
    value = {"parameters": MappingProxyType({"a": MappingProxyType({"b": 1})})}

    assert to_json(value) == '{"parameters":{"a":{"b":1}}}'
