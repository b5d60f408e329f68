"""Progress helpers for rule authors and scripts, plus the original rulechecker's rule_utils API.

Inside a rule the daemon has already bound these functions to the event's transaction; a
script binds them with `with rule_utils.connect(url):`, a test with
`with rule_utils.bound(switchboard.testing.InMemoryProgress()):`. Nothing here imports the
daemon, and nothing connects at import time.
"""

from .binding import NotBoundError, ProgressStore, bound, current, is_bound
from .legacy import retrieveProgressFromDB, retrieveQueryCountsFromDB, submitProgressToDB
from .progress import (
    add_member,
    count,
    counts_with_prefix,
    generation,
    mark_fired,
    members,
    reset,
)
from .script import Connection, connect

__all__ = [
    "Connection",
    "NotBoundError",
    "ProgressStore",
    "add_member",
    "bound",
    "connect",
    "count",
    "counts_with_prefix",
    "current",
    "generation",
    "is_bound",
    "mark_fired",
    "members",
    "reset",
    "retrieveProgressFromDB",
    "retrieveQueryCountsFromDB",
    "submitProgressToDB",
]
