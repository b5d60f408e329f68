"""What the store tells collections logic about a collection: pure values, no SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OPEN, FIRED = "open", "fired"


@dataclass(frozen=True, slots=True)
class Head:
    """A locked collection's current generation, state and member count."""

    generation: int
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class CollectionState:
    """The current generation of one (rule, key)."""

    rule: str
    key: str
    generation: int
    state: str
    count: int
    expected: int | None
    opened_at: datetime
    last_member_at: datetime | None
    quiet_deadline: datetime | None
    trigger: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A firing's frozen member list, as recorded (its members stay in the store)."""

    id: str
    rule: str
    key: str
    generation: int
    member_count: int
    created_at: datetime
    file_path: str | None
