"""Whether a process the tests started (a daemon, a worker, a Ray head) is still running."""

from __future__ import annotations

import os


def alive(pid: int | None) -> bool:
    """Whether process `pid` exists (signal 0 asks without sending); a None pid is a test bug."""
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
