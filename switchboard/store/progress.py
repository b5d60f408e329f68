"""Collection progress in the database: members, counts, generations and the exactly-once firing.

`Progress` works inside a transaction someone else opened (the daemon's unit of work, or a
script's own), on SQLite and PostgreSQL. Every write to a collection first takes its row in
`collections` (an upsert that locks it), so concurrent daemons adding to one collection queue up
on that row and its counter stays exact; the firing's primary key makes firing exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from rule_utils.binding import ProgressStore

from ..clock import utc_now
from ..collections.state import CollectionState, Head
from .collection_tables import (
    FIRED,
    OPEN,
)
from .progress_statements import collections, firings, members_table, new_head, state_of, statements
from .statements import upsert

AfterFire = Literal["add", "ignore", "next_generation"]


@dataclass(frozen=True, slots=True)
class Added:
    """What adding one member did: `added` is False for a member already there or ignored."""

    added: bool
    generation: int
    count: int
    state: str
    reopened: bool = False


class Progress(ProgressStore):
    """Collection progress bound to one open transaction (a Session or a Connection)."""

    def __init__(self, bind: Session | Connection, clock: Callable[[], datetime] = utc_now) -> None:
        self._bind = bind
        self._clock = clock
        dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
        self._dialect = dialect.name
        self._sql = statements(dialect.name)

    # -- the rule_utils contract (documented on ProgressStore) ------------------------------

    def add_member(
        self,
        rule: str,
        key: str,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        return self.add(rule, key, member, data, extractor=extractor).added

    def members(
        self, key: str, *, rule: str | None = None, generation: int | None = None
    ) -> dict[str, Mapping[str, Any] | None]:
        m = members_table
        query = select(m.c.member, m.c.data).where(m.c.key == key)
        if generation is None:
            c = collections
            query = query.join(
                c,
                (c.c.rule == m.c.rule) & (c.c.key == m.c.key) & (c.c.generation == m.c.generation),
            )
        else:
            query = query.where(m.c.generation == generation)
        if rule is not None:
            query = query.where(m.c.rule == rule)
        found: dict[str, Mapping[str, Any] | None] = {}
        for member, data in self._bind.execute(query.order_by(m.c.member, m.c.rule)):
            if member not in found or found[member] is None:
                found[member] = data
        return found

    def count(self, key: str, *, rule: str | None = None) -> int:
        counts = self._counts(collections.c.key == key, rule)
        return counts.get(key, 0)

    def counts_with_prefix(self, prefix: str, *, rule: str | None = None) -> dict[str, int]:
        return self._counts(collections.c.key.startswith(prefix, autoescape=True), rule)

    def generation(self, rule: str, key: str) -> int:
        found = self._bind.execute(
            select(collections.c.generation).where(
                collections.c.rule == rule, collections.c.key == key
            )
        ).scalar_one_or_none()
        return found or 0

    def mark_fired(
        self,
        rule: str,
        key: str,
        generation: int,
        *,
        manifest_id: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        # A conditional update open→fired; the firing row's primary key is the guarantee: a
        # concurrent transaction firing the same generation waits for this one, then finds it.
        c = collections
        count = self._bind.execute(
            update(c)
            .where(c.c.rule == rule, c.c.key == key, c.c.generation == generation)
            .where(c.c.state == OPEN)
            .values(state=FIRED, quiet_deadline=None, trigger=None)
            .returning(c.c.member_count)
        ).scalar_one_or_none()
        if count is None:
            count = self._bind.execute(
                select(func.count()).where(
                    members_table.c.rule == rule,
                    members_table.c.key == key,
                    members_table.c.generation == generation,
                )
            ).scalar_one()
        row = {
            "rule": rule,
            "key": key,
            "generation": generation,
            "fired_at": self._clock(),
            "member_count": count,
            "manifest_id": manifest_id,
            "job_id": job_id,
        }
        insert = upsert(self._dialect, firings).on_conflict_do_nothing(
            index_elements=["rule", "key", "generation"]
        )
        return self._bind.execute(insert.values(row).returning(firings.c.rule)).first() is not None

    def reset(self, rule: str, key: str) -> int:
        now = self._clock()
        insert = upsert(self._dialect, collections)
        statement = (
            insert.values(new_head(rule, key, now))
            .on_conflict_do_update(
                index_elements=["rule", "key"],
                set_={
                    "generation": collections.c.generation + 1,
                    "state": OPEN,
                    "member_count": 0,
                    "opened_at": now,
                    "last_member_at": None,
                    "quiet_deadline": None,
                    "trigger": None,
                },
            )
            .returning(collections.c.generation)
        )
        return int(self._bind.execute(statement).scalar_one())

    # -- what the processor and the sweeper need besides ------------------------------------

    def add(
        self,
        rule: str,
        key: str,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
        after_fire: AfterFire = "add",
        quiet_for: timedelta | None = None,
        trigger: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> Added:
        """Add a member; a fired generation takes it (`add`), drops it (`ignore`) or is
        followed by the next generation that takes it (`next_generation`). With `quiet_for`
        a new member pushes the quiet deadline out and stores `trigger` for the sweeper."""
        head = self.lock(rule, key)
        reopened = False
        if head.state == FIRED and after_fire == "ignore":
            return Added(False, head.generation, head.count, head.state)
        if head.state == FIRED and after_fire == "next_generation":
            head, reopened = Head(self.reset(rule, key), OPEN, 0), True
        if not self.insert_member(rule, key, head.generation, member, data, extractor=extractor):
            return Added(False, head.generation, head.count, head.state, reopened)
        count = self.bump(
            rule,
            key,
            1,
            quiet_for=quiet_for if head.state == OPEN else None,
            trigger=trigger,
            expected=expected,
        )
        return Added(True, head.generation, count, head.state, reopened)

    def lock(self, rule: str, key: str) -> Head:
        """Create or lock the (rule, key) row until the transaction ends; its current state.

        Callers holding several collections should lock them in one order (sorted), or two
        transactions can deadlock.
        """
        row = {**new_head(rule, key, self._clock())}
        generation, state, count = self._bind.execute(self._sql.lock_head, row).one()
        return Head(int(generation), str(state), int(count))

    def insert_member(
        self,
        rule: str,
        key: str,
        generation: int,
        member: str,
        data: Mapping[str, Any] | None = None,
        *,
        extractor: str | None = None,
    ) -> bool:
        """Insert into that generation without counting it (see `bump`); False if there."""
        row = {
            "rule": rule,
            "key": key,
            "generation": generation,
            "member": member,
            "data": None if data is None else dict(data),
            "extractor": extractor,
            "added_at": self._clock(),
        }
        return self._bind.execute(self._sql.insert_member, row).first() is not None

    def bump(
        self,
        rule: str,
        key: str,
        added: int,
        *,
        quiet_for: timedelta | None = None,
        trigger: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> int:
        """Count `added` new members of the current generation; the new count."""
        now = self._clock()
        values: dict[str, Any] = {
            "member_count": collections.c.member_count + added,
            "last_member_at": now,
        }
        if expected is not None:
            values["expected"] = expected
        if quiet_for is not None:
            values["quiet_deadline"] = now + quiet_for
            values["trigger"] = None if trigger is None else dict(trigger)
        count = self._bind.execute(
            update(collections)
            .where(collections.c.rule == rule, collections.c.key == key)
            .values(**values)
            .returning(collections.c.member_count)
        ).scalar_one()
        return int(count)

    def collection(self, rule: str, key: str) -> CollectionState | None:
        """The current generation of (rule, key), or None if never seen."""
        row = self._bind.execute(
            select(collections).where(collections.c.rule == rule, collections.c.key == key)
        ).first()
        return None if row is None else state_of(row)

    def has_all(self, rule: str, key: str, generation: int, expected: frozenset[str]) -> bool:
        """Whether every one of `expected` is a member of that generation."""
        if not expected:
            return True
        m = members_table
        found = self._bind.execute(
            select(func.count()).where(
                m.c.rule == rule,
                m.c.key == key,
                m.c.generation == generation,
                m.c.member.in_(sorted(expected)),
            )
        ).scalar_one()
        return int(found) == len(expected)

    def clear_deadline(self, rule: str, key: str) -> None:
        """Stop the sweeper from looking at this collection until its next member."""
        c = collections
        self._bind.execute(
            update(c).where(c.c.rule == rule, c.c.key == key).values(quiet_deadline=None)
        )

    def quiet_due(self, now: datetime, limit: int = 100) -> list[CollectionState]:
        """Open collections whose quiet deadline has passed, locked (skipped if another
        transaction holds them) so concurrent sweepers take disjoint ones."""
        c = collections
        query = (
            select(c)
            .where(c.c.state == OPEN, c.c.quiet_deadline <= now)
            .order_by(c.c.quiet_deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [state_of(row) for row in self._bind.execute(query)]

    def _counts(self, where: Any, rule: str | None) -> dict[str, int]:
        c = collections
        query = select(c.c.key, c.c.rule, c.c.member_count).where(where)
        if rule is not None:
            query = query.where(c.c.rule == rule)
        per_key: dict[str, list[int]] = defaultdict(list)
        for key, _rule, count in self._bind.execute(query):
            per_key[key].append(int(count))
        counts = {key: found[0] for key, found in per_key.items() if len(found) == 1}
        shared = sorted(key for key, found in per_key.items() if len(found) > 1)
        if shared:  # a key used by several rules: count each member once
            m = members_table
            distinct = (
                select(m.c.key, func.count(m.c.member.distinct()))
                .join(
                    c,
                    (c.c.rule == m.c.rule)
                    & (c.c.key == m.c.key)
                    & (c.c.generation == m.c.generation),
                )
                .where(m.c.key.in_(shared))
                .group_by(m.c.key)
            )
            counts.update({key: 0 for key in shared})
            counts.update({key: int(n) for key, n in self._bind.execute(distinct)})
        return dict(sorted(counts.items()))
