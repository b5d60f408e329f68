"""Migration 0010: the lease table; and back."""

from __future__ import annotations

from tests.conftest import Database
from tests.store.test_migration_0005 import _migrate
from tests.store.test_migration_0006 import _downgrade, _tables


def test_migration_0010_adds_the_lease_table_and_downgrades_without_it(
    empty_database: Database,
) -> None:
    _migrate(empty_database, "0010")
    assert "leases" in _tables(empty_database)

    _downgrade(empty_database, "0008")

    assert "leases" not in _tables(empty_database)
    assert "jobs" in _tables(empty_database)
