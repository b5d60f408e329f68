"""A lease on a singleton task, so of several daemons sharing one database exactly one runs it.

The holder renews its lease before it runs out; when it stops (or dies) the lease ends and
another daemon takes it over on its next try. One row per task in `leases`; taking it is one
conditional UPDATE, which PostgreSQL serialises on the row, so two daemons never both hold it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, update

from ..clock import utc_now
from .engine import redacted
from .errors import store_errors
from .lease_tables import leases
from .statements import upsert


class Lease:
    """The lease on task `name` for this process (`holder`: a fresh random id by default)."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        lease_s: float,
        *,
        holder: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.name = name
        self.lease_s = lease_s
        self.holder = holder or secrets.token_hex(16)
        self.clock = clock
        self._where = redacted(engine.url)

    def acquire(self) -> bool:
        """Take the lease, or renew it if ours, for `lease_s` from now; False if another
        holder's lease has not ended. StoreError when the database is unreachable."""
        now = self.clock()
        until = now + timedelta(seconds=self.lease_s)
        with store_errors(self._where), self.engine.begin() as connection:
            insert = upsert(connection.dialect.name, leases).on_conflict_do_nothing(
                index_elements=["name"]
            )
            connection.execute(
                insert, {"name": self.name, "holder": self.holder, "expires_at": until}
            )
            taken = connection.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=until)
            )
            return bool(taken.rowcount == 1)

    def release(self) -> None:
        """Give the lease up now (if ours), so another daemon need not wait for it to end."""
        with store_errors(self._where), self.engine.begin() as connection:
            connection.execute(
                delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder)
            )
