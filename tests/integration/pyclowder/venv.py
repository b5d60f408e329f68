"""A virtualenv with pyclowder 3.0.8 from PyPI, built once and reused (pyclowder is no dependency).

The virtualenv lives in a folder keyed by the pyclowder and Python versions (under pytest's
cache, which git ignores). A lock file makes concurrent sessions wait for one builder; a
marker file written last says the build finished, so an interrupted build is redone.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

PYCLOWDER_VERSION = "3.0.8"
READY_MARKER = "switchboard-ready"
BUILD_TIMEOUT_S = 600


class PyclowderVenvError(RuntimeError):
    """The pyclowder virtualenv could not be built; the message has pip's output."""


def cache_key() -> str:
    """The folder name: one virtualenv per pyclowder version and Python minor version."""
    return f"pyclowder-{PYCLOWDER_VERSION}-py{sys.version_info.major}{sys.version_info.minor}"


def pyclowder_python(folder: Path) -> Path:
    """The interpreter of a virtualenv in `folder` that has pyclowder installed; builds it if
    no finished build is there."""
    folder.mkdir(parents=True, exist_ok=True)
    venv = folder / "venv"
    python = venv / "bin" / "python"
    with (folder / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        marker = venv / READY_MARKER
        if marker.is_file() and marker.read_text() == PYCLOWDER_VERSION and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], "create the virtualenv")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", f"pyclowder=={PYCLOWDER_VERSION}"],
            f"install pyclowder=={PYCLOWDER_VERSION}",
        )
        _run(
            [str(python), "-c", "import pyclowder.extractors, pyclowder.connectors"],
            "import pyclowder",
        )
        marker.write_text(PYCLOWDER_VERSION)
    return python


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PyclowderVenvError(f"could not {what} within {BUILD_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise PyclowderVenvError(f"could not {what} (exit code {done.returncode}):\n{output}")
