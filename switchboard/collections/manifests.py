"""Manifests: a firing's id and file path, and the sink wrapper that writes its JSON file.

The file is written by `ManifestFileSink` just before the firing's message is sent, from the
store, so a crash after the commit cannot lose it: the outbox row still waits, and the file is
(re)written before the row goes out. The SQL lives in `store/manifests.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import DeliveryFailed, SubmissionRejected
from ..ports import ManifestFiles, OutboxRow, SendResult, Sink

_NAMESPACE = uuid.UUID("0b9f5c1e-2d7a-4f43-8e61-7c2b9a5d4e10")


def manifest_id(rule: str, key: str, generation: int) -> str:
    """Deterministic, so a retried firing transaction records the same manifest."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((rule, key, str(generation)))))


def manifest_path(manifest_dir: str, mid: str) -> str:
    return str(Path(manifest_dir) / f"{mid}.json")


class ManifestFileSink(Sink):
    """Wraps a sink: writes a firing's manifest file (if asked for and missing) before sending.

    The file must be `<manifest_id>.json` directly inside `manifest_dir` (symbolic links
    resolved); a row naming any other path is refused with SubmissionRejected (failed at once),
    so no submission's parameters can make the relay write elsewhere. A file that cannot be
    written (unwritable or missing SWITCHBOARD_MANIFEST_DIR, full disk) raises DeliveryFailed:
    the relay retries the row with backoff and finally marks it failed, so `switchboard status`
    shows why. A lost database raises StoreError (reconnect path).
    """

    def __init__(self, inner: Sink, files: ManifestFiles, manifest_dir: str) -> None:
        self.inner = inner
        self.files = files
        self.manifest_dir = manifest_dir
        self.batched = inner.batched  # a chunk goes out as the inner sink would send it

    def send(self, row: OutboxRow) -> object:
        self.ensure_file(row)
        return self.inner.send(row)

    def send_many(self, rows: Sequence[OutboxRow]) -> list[SendResult]:
        """Like the inner sink's `send_many`; a row whose file cannot be written fails alone."""
        failed: list[SendResult] = []
        ready = []
        for row in rows:
            try:
                self.ensure_file(row)
            except (DeliveryFailed, SubmissionRejected) as exc:
                failed.append((row, exc))
            else:
                ready.append(row)
        return failed + list(self.inner.send_many(ready))

    def ensure_file(self, row: OutboxRow) -> None:
        """Write the row's manifest file if it asks for one that is missing; SubmissionRejected
        if its path is not its own file in the manifest folder, DeliveryFailed if the file
        system refuses."""
        parameters = row.submission.parameters
        path = parameters.get("file_paths")
        mid = parameters.get("manifest_id")
        if not (isinstance(path, str) and isinstance(mid, str)):
            return
        target = self.checked_path(path, mid)
        try:
            if target.exists():
                return
            self.files.write_manifest_file(mid, str(target))
        except OSError as exc:
            raise DeliveryFailed(f"writing manifest file {path}: {exc}") from exc

    def checked_path(self, path: str, mid: str) -> Path:
        """`path` resolved, if it is `<mid>.json` directly in the manifest folder."""
        if not self.manifest_dir:
            raise SubmissionRejected(
                f"manifest file {path!r} refused: SWITCHBOARD_MANIFEST_DIR is not set"
            )
        folder = Path(self.manifest_dir).resolve()
        expected = folder / f"{mid}.json"
        if expected.parent != folder or Path(path).resolve() != expected:
            raise SubmissionRejected(
                f"manifest file {path!r} refused: not <manifest_id>.json inside "
                "SWITCHBOARD_MANIFEST_DIR"
            )
        return expected

    def keepalive(self) -> None:
        self.inner.keepalive()

    def close(self) -> None:
        self.inner.close()


def with_manifest_files(
    sinks: Mapping[str, Sink], files: ManifestFiles, manifest_dir: str
) -> dict[str, Sink]:
    """Every sink wrapped in a ManifestFileSink writing into `manifest_dir` (wired in app.py)."""
    return {via: ManifestFileSink(sink, files, manifest_dir) for via, sink in sinks.items()}
