"""The command line's way to open the state database: migrated to head, or a clear refusal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from .errors import NotMigrated

if TYPE_CHECKING:
    from .store.sql import SqlStore


@contextlib.contextmanager
def migrated_store(url: str) -> Iterator[SqlStore]:
    """The SqlStore at `url`, closed after; a clear refusal if it is not migrated to head."""
    from .store.migrate import ensure_current
    from .store.sql import SqlStore

    try:
        ensure_current(url)
    except NotMigrated as exc:
        raise click.ClickException(str(exc)) from None
    store = SqlStore(url)
    try:
        yield store
    finally:
        store.close()
