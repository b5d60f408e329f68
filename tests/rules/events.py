"""Small builders of events and dataset views for rule tests."""

from __future__ import annotations

from typing import Any

from switchboard.model import DatasetView, Event, EventKind, FileInfo


def make_event(
    file_name: str = "2017-05-01__10-20-30-123_left.tif",
    *,
    dataset_name: str | None = "RGB GeoTIFFs - 2017-05-01__10-20-30-123",
    kind: EventKind = EventKind.FILE_ADDED,
    mime_type: str = "image/tiff",
    size: int | None = 1048576,
    file_id: str = "file-1",
    dataset_id: str | None = "dataset-1",
    message_id: str = "msg-1",
    parameters: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    routing_key: str = "clowder.dataset.file.added",
    with_file: bool = True,
) -> Event:
    file = FileInfo(file_id, file_name, mime_type, size) if with_file else None
    return Event(
        kind=kind,
        message_id=message_id,
        resource_id=file_id,
        dataset_id=dataset_id,
        file=file,
        dataset_name=dataset_name,
        host="https://clowder.example.org",
        routing_key=routing_key,
        parameters=parameters or {},
        body=body or {},
    )


def view_of(event: Event, *other_files: FileInfo) -> DatasetView:
    """The dataset view of `event` holding `other_files` plus the event's own file."""
    files = (*other_files, event.file) if event.file is not None else other_files
    return DatasetView(event.dataset_id or "", event.dataset_name, files)
