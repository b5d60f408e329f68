"""The job's output: one JSON line per member (`results.jsonl`) and `summary.json` at the end."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .worker import Record

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Summary:
    job_id: str | None
    total: int
    done: int
    failed: int
    elapsed_s: float
    members_per_s: float
    max_error_fraction: float
    ok: bool
    started_unix_s: float = 0.0  # when the runner started (for the overhead from submit)
    first_result_s: float | None = None  # from the runner's start to its first finished batch
    error: str | None = None  # why no member could run (the processor did not load)
    metadata_posted: int = 0  # results posted to Clowder (post_metadata)
    metadata_failed: int = 0

    @property
    def failed_fraction(self) -> float:
        return self.failed / self.total if self.total else 0.0


def recorded_members(path: Path) -> dict[str, bool]:
    """The members a results file already holds, and whether each succeeded.

    A re-run of the same job (Ray retried it, or it was submitted by hand again) skips them,
    so each member is recorded once. A torn last line (the job was killed while writing) is
    ignored: that member runs again.
    """
    recorded: dict[str, bool] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return recorded
    for line in lines:
        try:
            record = json.loads(line)
            recorded.setdefault(str(record["member"]), bool(record["ok"]))
        except (ValueError, KeyError, TypeError):
            continue
    return recorded


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a killed run's), so appends start on a new line."""
    try:
        with path.open("rb+") as file:
            data = file.read()
            if data and not data.endswith(b"\n"):
                file.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


class ResultsWriter:
    """Appends each member's record once, flushed per batch, and counts done and failed."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / RESULTS_FILE
        _drop_torn_tail(self.path)
        earlier = recorded_members(self.path)
        self.seen = set(earlier)
        self.done = sum(earlier.values())
        self.failed = len(earlier) - self.done
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, records: list[Record]) -> None:
        for record in records:
            if record["member"] in self.seen:
                continue
            self.seen.add(record["member"])
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            if record["ok"]:
                self.done += 1
            else:
                self.failed += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_summary(folder: Path, summary: Summary) -> Path:
    path = folder / SUMMARY_FILE
    data: dict[str, Any] = asdict(summary)
    data["failed_fraction"] = summary.failed_fraction
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
