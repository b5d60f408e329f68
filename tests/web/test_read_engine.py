"""On SQLite, the pages' reads never hold the write lock the daemon's intake needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from switchboard.store.engine import make_engine
from switchboard.store.migrate import upgrade


def _writer_can_start(path: Path) -> bool:
    writer = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        writer.close()


@pytest.mark.parametrize(("reads_only", "writer_waits"), [(True, False), (False, True)])
def test_a_page_read_in_progress_leaves_the_write_lock_free_only_with_reads_only(
    tmp_path: Path, reads_only: bool, writer_waits: bool
) -> None:
    path = tmp_path / "state.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}", reads_only=reads_only)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM submissions")).scalar_one()
            assert _writer_can_start(path) is not writer_waits  # while the read is open
    finally:
        engine.dispose()
