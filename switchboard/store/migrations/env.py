"""Alembic environment: migrates the connection `switchboard.store.migrate` hands over."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from switchboard.store.engine import make_engine
from switchboard.store.models import Base

config = context.config
target_metadata = Base.metadata
version_table_schema = config.attributes.get("version_table_schema")


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table_schema=version_table_schema,
        compare_type=True,
        **kwargs,
    )


def run_offline() -> None:
    """Write the SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_online(connection)
else:  # the alembic command line, given sqlalchemy.url in an ini file
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            run_online(connection)
    finally:
        engine.dispose()
