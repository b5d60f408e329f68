"""Debounces in the database: a held submission per (rule, resource) and its deadline."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from ..ports import HeldSubmission
from .control_tables import DebounceRow
from .statements import upsert

debounces = cast(Table, DebounceRow.__table__)


class SqlDebounces:
    """`ports.Debounces` inside one unit of work's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._dialect = session.get_bind().dialect.name

    def hold(
        self, rule: str, key: str, now: datetime, deadline: datetime, trigger: Mapping[str, Any]
    ) -> None:
        """Hold (or push back) the rule's submission for `key` until `deadline`, with `trigger`
        (the latest matching event) replacing the one held so far."""
        insert = upsert(self._dialect, debounces).values(
            rule=rule,
            key=key,
            deadline=deadline,
            events=1,
            first_event_at=now,
            trigger=dict(trigger),
        )
        statement = insert.on_conflict_do_update(
            index_elements=["rule", "key"],
            set_={
                "deadline": insert.excluded.deadline,
                "trigger": insert.excluded.trigger,
                "events": debounces.c.events + 1,
            },
        )
        self._session.execute(statement)

    def due(self, now: datetime, limit: int | None = 100) -> list[HeldSubmission]:
        """Held submissions whose deadline has passed, locked (skipped when another sweeper
        holds them, so concurrent daemons take disjoint ones), oldest deadline first; at most
        `limit` (None: all)."""
        query = (
            select(debounces)
            .where(debounces.c.deadline <= now)
            .order_by(debounces.c.deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [
            HeldSubmission(row.rule, row.key, row.deadline, row.events, row.trigger)
            for row in self._session.execute(query)
        ]

    def drop(self, rule: str, key: str) -> None:
        self._session.execute(
            delete(debounces).where(debounces.c.rule == rule, debounces.c.key == key)
        )

    def pending(self) -> list[HeldSubmission]:
        """Every held submission (for status and tests), soonest deadline first."""
        query = select(debounces).order_by(debounces.c.deadline)
        return [
            HeldSubmission(row.rule, row.key, row.deadline, row.events, row.trigger)
            for row in self._session.execute(query)
        ]
