"""Applies and checks the Alembic migrations of the state database, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from ..errors import NotMigrated
from .engine import checked_schema, make_engine, redacted
from .errors import store_errors

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(schema: str | None = None) -> Config:
    """Alembic configured in code, so it works from an installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["version_table_schema"] = schema
    return config


def head_revision() -> str:
    """The revision this version of Switchboard needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only if the versions folder were empty
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade(url: str | URL, schema: str | None = None) -> None:
    """Create or migrate the tables to the head revision (in `schema` on PostgreSQL)."""
    schema = checked_schema(url, schema)
    engine = make_engine(url, schema)
    try:
        with store_errors(redacted(url)), engine.begin() as connection:
            if schema is not None:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            config = alembic_config(schema)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(url: str | URL, schema: str | None = None) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    engine = make_engine(url, checked_schema(url, schema))
    try:
        return _current(engine, schema)
    finally:
        engine.dispose()


def ensure_current(engine_or_url: Engine | str | URL, schema: str | None = None) -> None:
    """Raise NotMigrated unless the database is at the head revision.

    Given an engine, its own connection settings (search_path) decide the schema unless
    `schema` names it.
    """
    if isinstance(engine_or_url, Engine):
        _ensure_current(engine_or_url, schema)
        return
    engine = make_engine(engine_or_url, checked_schema(engine_or_url, schema))
    try:
        _ensure_current(engine, schema)
    finally:
        engine.dispose()


def _ensure_current(engine: Engine, schema: str | None) -> None:
    current = _current(engine, schema)
    head = head_revision()
    if current == head:
        return
    where = redacted(engine.url)
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise NotMigrated(
            f"database at {where} is at revision {current}, which this version of Switchboard "
            f"does not know (need {head}): upgrade Switchboard"
        )
    raise NotMigrated(
        f"database at {where} is not migrated (at {current or 'empty'}, need {head}): "
        "run 'switchboard db upgrade'"
    )


def _current(engine: Engine, schema: str | None) -> str | None:
    with store_errors(redacted(engine.url)), engine.connect() as connection:
        return _revision_of(connection, schema)


def _revision_of(connection: Connection, schema: str | None) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return context.get_current_revision()
