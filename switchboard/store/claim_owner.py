"""Claims bound to a PostgreSQL session lock, so a dead daemon's claimed rows come back at once.

A relay's claim on outbox rows normally lasts its lease (`relay_lease_s`, 30 s): a daemon that
is killed leaves its rows waiting that long. Each `SqlStore` on PostgreSQL therefore holds a
session-level advisory lock, `(LOCK_CLASS, owner_id)`, on a connection of its own for as long
as it lives, and writes its `owner_id` into every claim token it hands out. When the process
dies its connection closes and PostgreSQL drops the lock at once; any relay can then see, in
`pg_locks`, that the owner of a claim is gone and take the row back (`reap_statement`)
without waiting for the lease.

A live owner's claims are never taken back this way: its lock is granted for as long as its
session lasts. The one window left is a live daemon whose session the database ends (a
restart, `pg_terminate_backend`) while a send is in flight: until it takes its lock again
(`ensure`, within `CHECK_EVERY_S`) its rows count as orphaned; rows not yet sent are fenced
as always (their token changed, the renewal before sending fails), a send already in
progress may be repeated by the relay that took the row (at-least-once, as the outbox is).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid

from sqlalchemy import Connection, Engine, text
from sqlalchemy.sql.elements import TextClause

log = logging.getLogger(__name__)

LOCK_CLASS = 0x5342  # the advisory-lock class id of claim owners ("SB")
TOKEN_MARK = "o"  # tokens of owned claims: "o" + 10-digit owner id + 21 hex digits (32 chars)
OWNER_DIGITS = 10
CHECK_EVERY_S = 1.0  # how often the owner's session is checked (and its lock retaken if lost)

LIVE_OWNERS = (
    "SELECT lpad(l.objid::text, 10, '0') FROM pg_locks l"
    " WHERE l.locktype = 'advisory' AND l.classid = 21314 AND l.objsubid = 2 AND l.granted"
    " AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())"
)
assert LOCK_CLASS == 21314  # spelt out in LIVE_OWNERS: pg_locks.classid is an oid


def owned_by_live_session(owner_id: int) -> TextClause:
    """A WHERE clause: this owner's lock is held (its session is alive)."""
    return text(
        "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 21314"
        " AND l.objsubid = 2 AND l.granted AND l.objid = CAST(:claim_owner AS oid))"
    ).bindparams(claim_owner=owner_id)


def orphaned_claim() -> TextClause:
    """A WHERE clause on `submissions`: claimed under an owner whose session has ended."""
    return text(
        f"claim_token LIKE '{TOKEN_MARK}%'"
        f" AND substr(claim_token, 2, {OWNER_DIGITS}) NOT IN ({LIVE_OWNERS})"
    )


class ClaimOwner:
    """This process's advisory lock on a connection of its own; thread-safe.

    `ensure()` (called before claiming) connects and takes the lock the first time, and at
    most every `check_every_s` checks the session and takes the lock again if the session
    was lost, so a database restart costs the owner its claims only for that long.
    """

    def __init__(self, engine: Engine, *, check_every_s: float = CHECK_EVERY_S) -> None:
        self.engine = engine
        self.check_every_s = check_every_s
        self.owner_id = 0
        self._connection: Connection | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        """A fresh claim token naming this owner."""
        return f"{TOKEN_MARK}{self.owner_id:0{OWNER_DIGITS}d}{uuid.uuid4().hex[:21]}"

    def ensure(self) -> bool:
        """Hold the lock (taking it if needed); False if the database cannot be reached."""
        with self._lock:
            if self._connection is not None and time.monotonic() - self._checked_at < (
                self.check_every_s
            ):
                return True
            try:
                if self._connection is not None:
                    self._connection.execute(text("SELECT 1"))
                else:
                    self._take()
            except Exception as exc:  # the session is gone: take the lock again next time
                log.info("claim owner lost its database session: %s", exc)
                self._drop()
                return False
            self._checked_at = time.monotonic()
            return True

    def _take(self) -> None:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            owner_id = self.owner_id or secrets.randbelow(2**31 - 2) + 1
            while not connection.execute(
                text("SELECT pg_try_advisory_lock(:cls, :owner)"),
                {"cls": LOCK_CLASS, "owner": owner_id},
            ).scalar():
                owner_id = secrets.randbelow(2**31 - 2) + 1  # taken by another owner: another
        except BaseException:
            connection.close()
            raise
        self.owner_id = owner_id
        self._connection = connection

    def _drop(self) -> None:
        """End the session (not back to the pool: a pooled session would keep the lock)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception as exc:  # it is broken already; nothing more to release
                log.debug("closing the claim owner's connection: %s", exc)

    def close(self) -> None:
        """Release the lock (the session ends): this owner's remaining claims are orphaned."""
        with self._lock:
            self._drop()
