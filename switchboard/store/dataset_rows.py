"""A batch's dataset reads and name writes in one PostgreSQL statement each.

A batch touches tens of datasets. Their names and files used to take two queries (one per
table) and their names an executemany of one upsert per dataset; every round trip costs the
intake thread a wait and a fresh turn at the GIL. Here the views come back as one joined
result (a row per file in first-seen order, or one row with a null file for a dataset without
files) and the names go in over arrays bound in binary, one statement text for any batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from ..model import FileInfo

# One index probe per dataset asked about: as plain joins PostgreSQL hashed the whole
# `datasets` table once per batch, a scan that grows with every dataset ever seen. LIMIT and
# OFFSET 0 keep each LATERAL subquery from being flattened back into such a join.
VIEWS = """
SELECT u.id, d.name, f.file_id, f.name, f.mime_type, f.size
FROM unnest(%(ids)b::varchar[]) AS u(id)
LEFT JOIN LATERAL (SELECT name FROM datasets WHERE datasets.id = u.id LIMIT 1) d ON true
LEFT JOIN LATERAL (
    SELECT file_id, name, mime_type, size, position, first_seen_at
    FROM dataset_files WHERE dataset_files.dataset_id = u.id OFFSET 0
) f ON true
ORDER BY u.id, f.position, f.first_seen_at, f.file_id
"""

_SET_NAMES = """
INSERT INTO datasets (id, name, name_fetched_at)
SELECT * FROM unnest(%(ids)b::varchar[], %(names)b::varchar[], %(fetched_at)b::timestamptz[])
ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_fetched_at = excluded.name_fetched_at
"""


def load_views(
    connection: Connection, dataset_ids: Sequence[str]
) -> dict[str, tuple[str | None, list[FileInfo]]]:
    """Each dataset's stored name (None if unknown) and files, in first-seen order."""
    return views_of(connection.exec_driver_sql(VIEWS, {"ids": list(dataset_ids)}).all())


def views_of(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[str | None, list[FileInfo]]]:
    """The datasets' names and files from the rows of `VIEWS` (`ids`: the dataset ids)."""
    views: dict[str, tuple[str | None, list[FileInfo]]] = {}
    for dataset_id, name, file_id, file_name, mime_type, size in rows:
        view = views.get(dataset_id)
        if view is None:
            view = views[dataset_id] = (name, [])
        if file_id is not None:
            view[1].append(FileInfo(file_id, file_name, mime_type, size))
    return views


def name_writes(rows: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, list[Any]]]:
    """The upsert of (`id`, `name`, `name_fetched_at`) rows, distinct ids, as one statement,
    and its parameters (`SqlUnitOfWork` sends it)."""
    parameters = {
        "ids": [r["id"] for r in rows],
        "names": [r["name"] for r in rows],
        "fetched_at": [r["name_fetched_at"] for r in rows],
    }
    return _SET_NAMES, parameters
