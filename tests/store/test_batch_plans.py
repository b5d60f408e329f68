"""A batch's inventory statements on PostgreSQL probe the rows of the datasets they name by
index; none reads a whole table, a cost that would grow with every file ever seen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from switchboard.store.dataset_rows import VIEWS
from switchboard.store.engine import make_engine
from switchboard.store.file_rows import _ADD_FILES, file_arrays, file_writes
from switchboard.store.migrate import upgrade

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DATASETS, FILES_EACH = 600, 8  # an inventory big enough for a scan to look cheap to a hash


def file_row(dataset: int, file: int) -> dict[str, Any]:
    return {
        "dataset_id": f"ds-{dataset:05d}",
        "file_id": f"file-{dataset:05d}-{file}",
        "name": f"{file}.bin",
        "mime_type": "application/octet-stream",
        "size": file,
        "first_seen_at": NOW,
    }


@pytest.fixture
def inventory(pg_url: str, pg_schema: str) -> Iterator[Engine]:
    """A migrated schema holding DATASETS datasets of FILES_EACH files, analysed."""
    upgrade(pg_url, pg_schema)
    engine = make_engine(pg_url, pg_schema)
    with engine.begin() as connection:
        every_file = [file_row(d, f) for d in range(DATASETS) for f in range(FILES_EACH)]
        connection.exec_driver_sql(*file_writes(every_file))
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name) SELECT DISTINCT dataset_id, 'n' FROM dataset_files"
        )
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE datasets")
        connection.exec_driver_sql("ANALYZE dataset_files")
    yield engine
    engine.dispose()


def plan(engine: Engine, statement: str, parameters: dict[str, Any]) -> str:
    """PostgreSQL's plan for `statement` with these parameters (not run)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    return "\n".join(row[0] for row in rows)


def test_adding_a_batch_of_files_probes_each_file_instead_of_reading_the_inventory(
    inventory: Engine,
) -> None:
    batch = [file_row(d, f) for d in range(0, 40) for f in (FILES_EACH, FILES_EACH + 1)]
    chosen = plan(inventory, _ADD_FILES, file_arrays(batch))
    assert "Seq Scan on dataset_files" not in chosen, chosen
    assert "Index Only Scan using pk_dataset_files" in chosen, chosen


def test_reading_a_batch_of_dataset_views_probes_each_dataset(inventory: Engine) -> None:
    ids = [f"ds-{d:05d}" for d in range(100, 140)]
    chosen = plan(inventory, VIEWS, {"ids": ids})
    assert "Seq Scan" not in chosen, chosen


def test_probed_file_positions_continue_each_dataset(inventory: Engine) -> None:
    with inventory.begin() as connection:
        rows = [file_row(7, 3), file_row(7, FILES_EACH), file_row(8, FILES_EACH)]
        connection.exec_driver_sql(*file_writes(rows))
        stored = connection.exec_driver_sql(
            "SELECT file_id, position FROM dataset_files"
            " WHERE dataset_id IN ('ds-00007', 'ds-00008') AND position > %(n)s ORDER BY 1",
            {"n": FILES_EACH},
        ).all()
    assert stored == [
        (f"file-00007-{FILES_EACH}", FILES_EACH + 1),
        (f"file-00008-{FILES_EACH}", FILES_EACH + 1),
    ]
