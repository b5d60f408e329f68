"""`rule_utils.connect(url)`: a standalone script's own transaction on Switchboard's database."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from .binding import ProgressStore, bound


class Connection:
    """A database connection with one open transaction, bound for rule_utils while entered.

    ::

        with rule_utils.connect("postgresql+psycopg://...") as db:
            rule_utils.add_member("my-rule", "day/2017-05-01", "file-1")
            db.count("day/2017-05-01")       # the same calls, as methods

    Leaving the block commits (or rolls back if it raised) and closes everything it opened;
    `commit()` ends the transaction early and starts the next one. The database must already be
    migrated (`switchboard db upgrade`).
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._engine: Any = None
        self._connection: Any = None
        self._binding: AbstractContextManager[ProgressStore] | None = None
        self.progress: ProgressStore | None = None

    def __enter__(self) -> Connection:
        from sqlalchemy import inspect

        from switchboard.store.engine import make_engine, redacted
        from switchboard.store.progress import Progress

        engine = make_engine(self.url, self.schema)
        try:
            connection = engine.connect()
            try:
                if not inspect(connection).has_table("collections"):
                    raise RuntimeError(
                        f"{redacted(self.url)} has no collection tables: "
                        "run `switchboard db upgrade` against it first"
                    )
            except BaseException:
                connection.close()
                raise
        except BaseException:
            engine.dispose()
            raise
        self._engine, self._connection = engine, connection
        self.progress = Progress(connection)
        self._binding = bound(self.progress)
        self._binding.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._binding is not None:
                self._binding.__exit__(exc_type, exc, tb)
            if self._connection is not None:
                if exc_type is None:
                    self._connection.commit()
                else:
                    self._connection.rollback()
        finally:
            if self._connection is not None:
                self._connection.close()
            if self._engine is not None:
                self._engine.dispose()
            self._binding = self._connection = self._engine = self.progress = None

    def commit(self) -> None:
        """Commit what the script did so far; later calls run in a new transaction."""
        if self._connection is None:
            raise RuntimeError("not connected: use `with rule_utils.connect(url) as db:`")
        self._connection.commit()

    def __getattr__(self, name: str) -> Any:
        # add_member, members, count, ... straight from the bound Progress
        progress = self.__dict__.get("progress")
        if progress is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(progress, name)


def connect(url: str, *, schema: str | None = None) -> Connection:
    """A `Connection` to Switchboard's database at `url`; use it as a context manager."""
    return Connection(url, schema=schema)
