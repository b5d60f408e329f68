"""Rule-set versions: the text of every loaded rule file, hashed, so a decision can name its rules.

A version is the SHA-256 of the files' relative paths and texts, in load order; its name is the
first 12 hex digits. The same rules loaded again (a reload that changed nothing, another daemon)
are the same version, stored once; each activation (start, reload, replay, backfill) gets a row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VERSION_CHARS = 12
# The files a rule set reads: rules, helpers beside them (`_helpers.py`), legacy rule maps.
VERSIONED_SUFFIXES = (".yaml", ".yml", ".py", ".json")
MAX_FILE_BYTES = 8 * 1024 * 1024  # the rule loader's own limit per file


@dataclass(frozen=True, slots=True)
class RuleFile:
    """One file of a rule set: its path as configured (relative where it was) and its text."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class RuleVersion:
    """A rule set's content: the paths it was loaded from, its files, its rules' names."""

    roots: tuple[str, ...]
    files: tuple[RuleFile, ...]
    rule_names: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (*self.roots, "\0", *(p for f in self.files for p in (f.path, f.text))):
            data = part.encode("utf-8", "surrogateescape")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    @property
    def version(self) -> str:
        return self.content_hash[:VERSION_CHARS]


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix in VERSIONED_SUFFIXES:
            yield entry


def version_of(paths: Iterable[str], rule_names: Iterable[str] = ()) -> RuleVersion:
    """The version of the rule set at `paths` (files or folders, as the loader is given them).

    Helper files the loader skips (`_helpers.py`) are included: changing one changes what the
    rules do. Files that cannot be read as text are kept as their replacement-decoded text.
    """
    files: list[RuleFile] = []
    seen: set[Path] = set()
    paths = list(paths)
    for raw in paths:
        path = Path(raw)
        found = list(_walk(path)) if path.is_dir() else [path] if path.is_file() else []
        for f in found:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            with f.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
            files.append(RuleFile(_portable(f), data.decode("utf-8", "replace")))
    roots = tuple(_portable(Path(p)) for p in paths)
    return RuleVersion(roots, tuple(files), tuple(rule_names))


def _portable(path: Path) -> str:
    """`path` relative to the working directory when it is below it, so versions compare
    equal across machines that run from a checkout; otherwise as given."""
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:
        return path.as_posix()


@contextmanager
def materialized(version: RuleVersion) -> Iterator[list[str]]:
    """The version's files written into a temporary folder; yields the paths to load.

    Each file keeps its relative path (leading `/` and `..` parts made harmless), so Python
    rules import their helpers as they did, and the configured roots are mapped the same way.
    """
    with tempfile.TemporaryDirectory(prefix="switchboard-rules-") as tmp:
        for f in version.files:
            target = _inside(tmp, f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
        roots = [str(_inside(tmp, root)) for root in version.roots]
        yield [r for r in roots if Path(r).exists()]


def _inside(folder: str, path: str) -> Path:
    parts = [p for p in Path(path).parts if p not in ("/", "..", "", ".")]
    return Path(folder, *parts)
