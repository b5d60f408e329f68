"""The lease on the real PostgreSQL: daemons racing for it never both hold it."""

from __future__ import annotations

import threading

import pytest

from switchboard.store.leases import Lease
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore

pytestmark = pytest.mark.postgres


def test_daemons_racing_for_the_lease_never_both_hold_it(pg_url: str, pg_schema: str) -> None:
    upgrade(pg_url, pg_schema)
    stores = [SqlStore(pg_url, schema=pg_schema) for _ in range(4)]
    try:
        contenders = [
            Lease(s.engine, "job-poller", 60.0, holder=f"d-{n}") for n, s in enumerate(stores)
        ]
        held: dict[str, int] = {}
        start = threading.Barrier(len(contenders))

        def race(lease: Lease) -> None:
            start.wait()
            held[lease.holder] = sum(lease.acquire() for _ in range(25))

        threads = [threading.Thread(target=race, args=(lease,)) for lease in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for store in stores:
            store.close()

    winners = [holder for holder, times in held.items() if times]
    assert len(held) == 4 and len(winners) == 1
    assert held[winners[0]] == 25  # the winner renews every time; nobody else gets it once
