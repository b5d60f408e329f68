"""Where a dataset's files are on disk, for legacy rules' `files[].filepath` (pyclowder's field).

Clowder v1 `dataset.file.added` bodies carry no path, and Switchboard's inventory keeps none, so
the path comes from where pyclowder got it: Clowder's file list (`GET /api/datasets/{id}/files`,
`filepath`), cached per dataset for `ttl_s`. Without Clowder, or for a file Clowder lists without
a path, an operator's template (`SWITCHBOARD_LEGACY_FILE_PATH`) gives it; failing both, the rule
sees the bare file name, as before.

`prepare(events)` does the lookups before the batch's transaction, like dataset names: a dataset
Clowder could not be asked about is returned with the reason, so its events are delayed (never
dropped). The rule itself then only reads the cache; were `prepare` not called, it looks up on
its own (inside the transaction) and a Clowder outage becomes that rule's error.
"""

from __future__ import annotations

import logging
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..clowder import FailFast
from ..errors import ClowderRejected, ClowderUnavailable
from ..model import Event, kinds_matching

LEGACY_ON: tuple[str, ...] = ("dataset.file.added", "manual.dataset")  # what legacy rules see
LEGACY_KINDS = kinds_matching(LEGACY_ON)
TEMPLATE_FIELDS = ("dataset_id", "dataset_name", "file_id", "filename")
SETTING = "SWITCHBOARD_LEGACY_FILE_PATH"

log = logging.getLogger(__name__)


class FileListing(Protocol):
    """What this needs of Clowder (`ClowderClient.dataset_files`)."""

    def dataset_files(self, dataset_id: str) -> list[dict[str, Any]]: ...


def template_problem(template: str) -> str | None:
    """Why `template` is not a usable path template, or None."""
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"{SETTING} {template!r} is not a valid template: {exc}"
    for name in used:
        if name not in TEMPLATE_FIELDS:
            known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            return f"{SETTING} {template!r}: unknown placeholder {{{name}}} (known: {known})"
    return None


@dataclass(frozen=True)
class _Listing:
    expires_at: float
    paths: Mapping[str, str]  # file id -> path on disk, for files Clowder gave one
    ids: frozenset[str]  # every file id Clowder listed


class FilePaths:
    """Paths on disk for legacy rules: Clowder's file list (cached), else a template, else none.

    Thread-safe: `prepare` runs on the daemon's thread, `path` on the engine's rule workers.
    Requests go through `clowder.FailFast` (`cooldown_s`, `between`): while Clowder is known to
    be down, lookups fail at once instead of one timeout per dataset. The processor calls
    `prepare` only while a legacy rule is loaded, so Switchboards without one never ask Clowder.
    """

    def __init__(
        self,
        listing: FileListing | None = None,
        template: str = "",
        *,
        ttl_s: float = 60.0,
        cooldown_s: float = 10.0,
        max_datasets: int = 1024,
        between: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listing = listing
        self.template = template
        self.problem = template_problem(template) if template else None
        self.ttl_s = ttl_s
        self.max_datasets = max(1, max_datasets)
        self.guard = FailFast(cooldown_s, between=between, clock=clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Listing] = OrderedDict()

    # --- before the transaction ---------------------------------------------------------------

    def prepare(self, events: Iterable[Event]) -> dict[str, str]:
        """Look up the datasets these events need; {dataset id: reason} for those to delay."""
        waiting: dict[str, str] = {}
        if self.listing is None:
            return waiting
        for event in events:
            dataset_id = event.dataset_id
            if not dataset_id or dataset_id in waiting or event.kind not in LEGACY_KINDS:
                continue
            try:
                self.ensure(event)
            except ClowderUnavailable as exc:
                waiting[dataset_id] = (
                    f"Clowder unavailable listing the files of dataset {dataset_id}: {exc}"
                )
        return waiting

    def ensure(self, event: Event) -> None:
        """Fetch the event's dataset's file list unless a fresh one that has its file is cached.

        ClowderUnavailable if Clowder cannot be asked; a refusal (404, 403, not JSON) is logged
        and remembered for `ttl_s`, so the rule falls back to the template without asking again.
        """
        dataset_id = event.dataset_id
        if self.listing is None or not dataset_id:
            return
        file_id = event.file.id if event.file is not None else None
        with self._lock:
            cached = self._cache.get(dataset_id)
            fresh = cached is not None and cached.expires_at > self._clock()
            if fresh and (file_id is None or file_id == dataset_id or file_id in cached.ids):  # type: ignore[union-attr]  # fresh implies cached is not None
                return
        try:
            files = self.guard.call(self.listing.dataset_files, dataset_id)
        except ClowderRejected as exc:
            log.warning("dataset %s file list refused: %s", dataset_id, exc)
            files = []
        self._remember(dataset_id, files)

    def _remember(self, dataset_id: str, files: list[dict[str, Any]]) -> None:
        paths: dict[str, str] = {}
        ids: set[str] = set()
        for f in files:
            file_id = f.get("id")
            if not isinstance(file_id, str):
                continue
            ids.add(file_id)
            path = f.get("filepath")
            if isinstance(path, str) and path:
                paths[file_id] = path
        entry = _Listing(self._clock() + self.ttl_s, paths, frozenset(ids))
        with self._lock:
            self._cache[dataset_id] = entry
            self._cache.move_to_end(dataset_id)
            while len(self._cache) > self.max_datasets:
                self._cache.popitem(last=False)

    # --- inside the rule ----------------------------------------------------------------------

    def path(self, dataset_id: str, file_id: str, filename: str, dataset_name: str) -> str | None:
        """The file's path on disk: Clowder's (as last cached), else the template's, else None."""
        with self._lock:
            cached = self._cache.get(dataset_id)
        if cached is not None and file_id in cached.paths:
            return cached.paths[file_id]
        return self.from_template(dataset_id, file_id, filename, dataset_name)

    def from_template(
        self, dataset_id: str, file_id: str, filename: str, dataset_name: str
    ) -> str | None:
        """The template filled in; None without a valid template or if a field it uses is empty."""
        if not self.template or self.problem:
            return None
        values = {
            "dataset_id": dataset_id,
            "dataset_name": dataset_name,
            "file_id": file_id,
            "filename": filename,
        }
        used = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        if any(not values[name] for name in used):
            return None
        return self.template.format_map(values)
