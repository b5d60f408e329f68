"""Attempt counters of redelivered deliveries, so one that crashes the daemon is found.

A delivery that comes back redelivered may have crashed the process while it was being
processed. Before the processor handles such a delivery it counts the attempt here, in a
transaction of its own that commits first (a crash cannot roll it back); the counter is deleted
in the transaction that commits the delivery's event, or when it is settled another way. A
counter that keeps growing therefore counts crashes (see `processor.CrashGuard`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Integer, String, Table, delete
from sqlalchemy.orm import Mapped, mapped_column

from ..ports import Clock, UnitOfWork
from .engine import redacted
from .errors import store_errors
from .models import Base
from .statements import upsert
from .unit_of_work import SqlUnitOfWork

if TYPE_CHECKING:
    from .sql import SqlStore


class IntakeAttempt(Base):
    """How many times processing a redelivered delivery was started without finishing."""

    __tablename__ = "intake_attempts"

    fingerprint: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    first_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime]


attempts_table = cast(Table, IntakeAttempt.__table__)


class SqlCrashGuard:
    """The processor's `CrashGuard` on the state database (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlStore, max_crashes: int) -> None:
        """Counts in `store`'s database, with its clock; `max_crashes` is at least 1."""
        self._engine = store.engine
        self._clock: Clock = store.clock
        self._where = redacted(store.engine.url)
        self.max_crashes = max(1, max_crashes)
        insert = upsert(self._engine.dialect.name, attempts_table)
        self._count = insert.on_conflict_do_update(
            index_elements=["fingerprint"],
            set_={
                "attempts": attempts_table.c.attempts + 1,
                "last_attempt_at": insert.excluded.last_attempt_at,
            },
        ).returning(attempts_table.c.attempts)

    def record_attempt(self, fingerprint: str) -> int:
        """Count one more attempt and commit it; the attempts so far, this one included."""
        now = self._clock()
        row = {
            "fingerprint": fingerprint,
            "attempts": 1,
            "first_attempt_at": now,
            "last_attempt_at": now,
        }
        with store_errors(self._where), self._engine.begin() as connection:
            return int(connection.execute(self._count, row).scalar_one())

    def forget(self, fingerprint: str) -> None:
        """Delete the counter in a transaction of its own."""
        with store_errors(self._where), self._engine.begin() as connection:
            connection.execute(self._delete(fingerprint))

    def forget_in(self, uow: UnitOfWork, fingerprint: str) -> None:
        """Delete the counter in `uow`'s transaction (the one committing the event)."""
        if not isinstance(uow, SqlUnitOfWork):
            raise TypeError(f"{type(uow).__name__} has no SQL session for the attempt counter")
        uow.session.execute(self._delete(fingerprint))

    def attempts(self, fingerprint: str) -> int:
        """The stored count (0 when none): for `status` and tests."""
        query = attempts_table.select().where(attempts_table.c.fingerprint == fingerprint)
        with store_errors(self._where), self._engine.connect() as connection:
            row = connection.execute(query).first()
        return 0 if row is None else int(row.attempts)

    @staticmethod
    def _delete(fingerprint: str) -> Any:
        return delete(attempts_table).where(attempts_table.c.fingerprint == fingerprint)
