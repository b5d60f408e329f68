"""Read-only queries behind the status page and the JSON API: collections, outbox, failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from ..store.collection_tables import OPEN
from ..store.models import FAILED, PENDING, STATUSES
from ..store.progress_statements import collections, firings
from ..store.statements import submissions

MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    """Which slice of a listing: `offset` rows skipped, at most `limit` (1..MAX_PAGE) shown."""

    offset: int = 0
    limit: int = 50

    @classmethod
    def of(cls, offset: str | None, limit: str | None, default_limit: int = 50) -> Page:
        """From query-string values; ValueError naming the parameter when one is not a number."""
        return cls(
            _whole("offset", offset, 0),
            max(1, min(MAX_PAGE, _whole("limit", limit, default_limit))),
        )


def _whole(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw[:40]!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {value}")
    return value


def listing(items: list[dict[str, Any]], total: int, page: Page) -> dict[str, Any]:
    """The JSON shape of every paginated answer: items plus where the next page starts."""
    following = page.offset + len(items)
    return {
        "items": items,
        "total": total,
        "offset": page.offset,
        "limit": page.limit,
        "next_offset": following if following < total else None,
    }


def collection_items(connection: Connection, page: Page) -> tuple[list[dict[str, Any]], int]:
    """Collections, open ones first (oldest opened first), then the most recently active."""
    c, f = collections, firings
    joined = c.outerjoin(
        f, and_(f.c.rule == c.c.rule, f.c.key == c.c.key, f.c.generation == c.c.generation)
    )
    query = (
        select(
            c.c.rule,
            c.c.key,
            c.c.generation,
            c.c.state,
            c.c.member_count,
            c.c.expected,
            c.c.opened_at,
            c.c.last_member_at,
            c.c.quiet_deadline,
            f.c.fired_at,
            f.c.manifest_id,
            f.c.job_id,
        )
        .select_from(joined)
        .order_by(
            case((c.c.state == OPEN, 0), else_=1),
            c.c.opened_at,
            c.c.rule,
            c.c.key,
        )
        .offset(page.offset)
        .limit(page.limit)
    )
    total = connection.execute(select(func.count()).select_from(c)).scalar_one()
    return [_collection(row._mapping) for row in connection.execute(query)], total


def _collection(row: Any) -> dict[str, Any]:
    count, expected = row["member_count"], row["expected"]
    percent = round(100.0 * count / expected, 1) if expected else None
    return {
        "rule": row["rule"],
        "key": row["key"],
        "generation": row["generation"],
        "state": row["state"],
        "member_count": count,
        "expected": expected,
        "percent": percent,
        "opened_at": iso(row["opened_at"]),
        "last_member_at": iso(row["last_member_at"]),
        "quiet_deadline": iso(row["quiet_deadline"]),
        "fired_at": iso(row["fired_at"]),
        "manifest_id": row["manifest_id"],
        "job_id": row["job_id"],
    }


@dataclass(frozen=True)
class OutboxSummary:
    """Submissions per status and the oldest pending one's creation time (None if none)."""

    counts: dict[str, int]
    oldest_pending_at: datetime | None

    def oldest_pending_age_s(self, now: datetime) -> float:
        if self.oldest_pending_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_pending_at).total_seconds())


def outbox_summary(connection: Connection) -> OutboxSummary:
    s = submissions
    counts = {status: 0 for status in STATUSES}
    for status, count in connection.execute(select(s.c.status, func.count()).group_by(s.c.status)):
        counts[status] = count
    oldest = connection.execute(
        select(func.min(s.c.created_at)).where(s.c.status == PENDING)
    ).scalar_one()
    return OutboxSummary(counts, _aware(oldest))


@dataclass(frozen=True)
class OpenCollections:
    """How many collections are open and when the oldest of them opened."""

    count: int
    oldest_opened_at: datetime | None


def open_collections(connection: Connection) -> OpenCollections:
    c = collections
    count, oldest = connection.execute(
        select(func.count(), func.min(c.c.opened_at)).where(c.c.state == OPEN)
    ).one()
    return OpenCollections(count, _aware(oldest))


def failed_submissions(connection: Connection, page: Page) -> tuple[list[dict[str, Any]], int]:
    """Submissions the relay gave up on, newest first, with the reason."""
    s = submissions
    query = (
        select(
            s.c.job_id,
            s.c.rule,
            s.c.extractor,
            s.c.via,
            s.c.resource_type,
            s.c.resource_id,
            s.c.attempts,
            s.c.last_error,
            s.c.created_at,
        )
        .where(s.c.status == FAILED)
        .order_by(s.c.created_at.desc(), s.c.job_id)
        .offset(page.offset)
        .limit(page.limit)
    )
    total = connection.execute(
        select(func.count()).select_from(s).where(s.c.status == FAILED)
    ).scalar_one()
    items = [
        {
            "job_id": row.job_id,
            "rule": row.rule,
            "target": row.extractor,
            "via": row.via,
            "resource_type": row.resource_type,
            "resource_id": row.resource_id,
            "attempts": row.attempts,
            "reason": row.last_error,
            "created_at": iso(row.created_at),
        }
        for row in connection.execute(query)
    ]
    return items, total


def submissions_per_rule(connection: Connection) -> dict[str, dict[str, int]]:
    """Per rule: its outbox rows in all (as long as retention keeps them) and the failed ones."""
    s = submissions
    query = select(
        s.c.rule,
        func.count(),
        func.sum(case((s.c.status == FAILED, 1), else_=0)),
    ).group_by(s.c.rule)
    return {
        rule: {"submissions": total, "failed": int(failed or 0)}
        for rule, total, failed in connection.execute(query)
    }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset (the page shows it in the viewer's own zone)."""
    aware = _aware(value)
    return aware.isoformat() if aware is not None else None


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
