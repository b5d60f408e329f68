"""The wall clock every default `clock=` parameter uses: an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, timezone-aware in UTC (the database columns and lease arithmetic assume UTC)."""
    return datetime.now(UTC)
