"""pyclowder's dataset resource for a legacy rule, built from Switchboard's own inventory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import DatasetView, Event
from .legacy_paths import FilePaths


def _event_path(event: Event) -> str | None:
    body = event.body
    source = body.get("source")
    extra = source.get("extra") if isinstance(source, Mapping) else None
    for holder in (body, extra if isinstance(extra, Mapping) else {}):
        for key in ("filepath", "file_path"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def dataset_resource(
    event: Event, dataset: DatasetView, paths: FilePaths | None = None
) -> dict[str, Any]:
    """pyclowder's dataset resource for this event, built from Switchboard's inventory.

    `filepath` is the file's path on disk: the one the event carries for its own file, else what
    `paths` finds (Clowder's file list, then the template), else just the file name.
    """
    triggering = event.file
    carried = _event_path(event)
    dataset_id = dataset.id or event.dataset_id or ""
    name = dataset.name or event.dataset_name or ""
    files = []
    for f in dataset.files:
        path = None
        if triggering is not None and f.id == triggering.id and carried:
            path = carried
        elif paths is not None:
            path = paths.path(dataset_id, f.id, f.name, name)
        files.append(
            {
                "id": f.id,
                "filename": f.name,
                "filepath": path or f.name,
                "contentType": f.mime_type,
                "size": "" if f.size is None else str(f.size),
            }
        )
    trigger_name = None
    if triggering is not None:
        trigger_name = next((f.name for f in dataset.files if f.id == triggering.id), None)
        trigger_name = trigger_name or triggering.name or None
    return {
        "type": "dataset",
        "id": dataset.id or event.dataset_id,
        "name": name,
        "files": files,
        "triggering_file": trigger_name,
        "parent": {},
        "dataset_info": {"id": dataset.id or event.dataset_id, "name": name},
    }
