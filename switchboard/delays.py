"""How many times an event has waited for Clowder: the header that counts it, and the cap.

`RabbitSource.delay` sets the count on the copy it parks in `retry.<queue>`; the processor
reads it and dead-letters an event that has waited `max_delays` times instead of delaying it
again, so one dataset Clowder keeps failing on cannot circulate forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DELAY_COUNT_HEADER = "x-switchboard-delays"
DEFAULT_MAX_DELAYS = 20


def delay_count(properties: Mapping[str, Any] | None) -> int:
    """Times this delivery was delayed before (0 for a fresh event or an unreadable header)."""
    headers = (properties or {}).get("headers")
    value = headers.get(DELAY_COUNT_HEADER) if isinstance(headers, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        return 0


def gave_up_reason(count: int, reason: str) -> str:
    """The dead-letter reason of an event that waited too often."""
    return f"delayed {count} times waiting for Clowder: {reason}"
