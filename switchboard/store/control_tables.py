"""The rule-control tables: pending debounces, per-target throttle state, operator actions.

They share `models.Base.metadata`, so Alembic and the model/migration comparison see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class DebounceRow(Base):
    """A debounced rule's held submission for one resource: fires at `deadline` with the latest
    matching event (`trigger`) unless another matching event pushes the deadline back."""

    __tablename__ = "debounces"
    __table_args__ = (Index(None, "deadline"),)

    rule: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    deadline: Mapped[datetime]
    events: Mapped[int] = mapped_column(BigInteger)  # matching events held so far
    first_event_at: Mapped[datetime]
    trigger: Mapped[dict[str, Any]]


class TargetThrottleRow(Base):
    """One row per limited target: the lock two relays take to admit rows one at a time, and
    the rate limit's token bucket."""

    __tablename__ = "target_throttles"

    target: Mapped[str] = mapped_column(String, primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime]


class OperatorActionRow(Base):
    """What an operator did (retry, resubmit, redrive), who did it and to what."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index(None, "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String)  # a job id or a message id
    detail: Mapped[str] = mapped_column(Text)
