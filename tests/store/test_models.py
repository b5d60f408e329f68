"""Models: UTC datetimes on every database, and the migrations create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select

from switchboard.store.engine import make_engine
from switchboard.store.models import Base, ProcessedMessage
from tests.conftest import Database

_messages = ProcessedMessage.__table__


def test_migrated_tables_match_the_models(database: Database) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_datetimes_come_back_aware_and_in_utc(database: Database) -> None:
    two_hours_east = timezone(timedelta(hours=2))
    stored = datetime(2025, 3, 1, 14, 30, 5, 123456, tzinfo=two_hours_east)
    engine = make_engine(database.url, database.schema)
    try:
        with engine.begin() as connection:
            connection.execute(insert(_messages).values(message_id="m", processed_at=stored))
            loaded = connection.execute(select(_messages.c.processed_at)).scalar_one()
    finally:
        engine.dispose()

    assert loaded == stored
    assert loaded.tzinfo == UTC
    assert loaded.hour == 12


def test_naive_datetimes_are_refused(database: Database) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        with pytest.raises(sa_exc.StatementError, match="naive datetime"), engine.begin() as c:
            c.execute(insert(_messages).values(message_id="m", processed_at=datetime(2025, 1, 1)))
    finally:
        engine.dispose()
