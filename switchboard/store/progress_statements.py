"""The statements and row conversions behind `Progress`, built once per dialect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table

from ..collections.state import OPEN, CollectionState
from .collection_tables import CollectionFiring, CollectionMember, CollectionRow
from .statements import upsert

collections = cast(Table, CollectionRow.__table__)
members_table = cast(Table, CollectionMember.__table__)
firings = cast(Table, CollectionFiring.__table__)


@dataclass(frozen=True, slots=True)
class Statements:
    lock_head: Any
    insert_member: Any


@cache
def statements(dialect: str) -> Statements:
    """Built once per dialect; each call only binds values (building costs more than running)."""
    head = upsert(dialect, collections)
    member = upsert(dialect, members_table)
    return Statements(
        lock_head=head.on_conflict_do_update(
            index_elements=["rule", "key"], set_={"generation": collections.c.generation}
        ).returning(collections.c.generation, collections.c.state, collections.c.member_count),
        insert_member=member.on_conflict_do_nothing(
            index_elements=["rule", "key", "generation", "member"]
        ).returning(members_table.c.member),
    )


def new_head(rule: str, key: str, now: datetime) -> dict[str, Any]:
    return {
        "rule": rule,
        "key": key,
        "generation": 1,
        "state": OPEN,
        "member_count": 0,
        "opened_at": now,
    }


def state_of(row: Any) -> CollectionState:
    return CollectionState(
        rule=row.rule,
        key=row.key,
        generation=row.generation,
        state=row.state,
        count=row.member_count,
        expected=row.expected,
        opened_at=row.opened_at,
        last_member_at=row.last_member_at,
        quiet_deadline=row.quiet_deadline,
        trigger=row.trigger,
    )
