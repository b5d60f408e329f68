"""The collection tables: current state per (rule, key), members per generation, firings, manifests.

They share `models.Base.metadata`, so Alembic and the model/migration comparison see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..collections.state import FIRED as FIRED  # re-exported: the states
from ..collections.state import OPEN as OPEN
from .models import Base


class CollectionRow(Base):
    """One row per (rule, key): its current generation and that generation's state.

        `member_count` is a counter kept with the member inserts (counting rows would be O(n) per
        event); `quiet_deadline` is when a `quiet_for` collection fires unless another member comes,
    and `trigger` the last member's event and rendered targets the sweeper then fires with.
    """

    __tablename__ = "collections"
    __table_args__ = (Index(None, "key"), Index(None, "state", "quiet_deadline"))

    rule: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    member_count: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime]
    last_member_at: Mapped[datetime | None]
    quiet_deadline: Mapped[datetime | None]
    trigger: Mapped[dict[str, Any] | None]


class CollectionMember(Base):
    """A distinct member of one generation, with the data kept for its manifest."""

    __tablename__ = "collection_members"

    rule: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    member: Mapped[str] = mapped_column(String, primary_key=True)
    data: Mapped[dict[str, Any] | None]
    extractor: Mapped[str | None] = mapped_column(String)
    added_at: Mapped[datetime]


class CollectionFiring(Base):
    """The one firing of a generation; its primary key is the database's exactly-once guarantee."""

    __tablename__ = "collection_firings"
    __table_args__ = (Index(None, "fired_at"),)

    rule: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    fired_at: Mapped[datetime]
    member_count: Mapped[int] = mapped_column(Integer)
    manifest_id: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))


class ManifestRow(Base):
    """A firing's frozen member list (the members are in `manifest_members`)."""

    __tablename__ = "manifests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String)
    key: Mapped[str] = mapped_column(String)
    generation: Mapped[int] = mapped_column(Integer)
    member_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    file_path: Mapped[str | None] = mapped_column(String)


class ManifestMember(Base):
    """One member of a manifest; the primary key order is the manifest's (sorted) order."""

    __tablename__ = "manifest_members"

    manifest_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member: Mapped[str] = mapped_column(String, primary_key=True)
    data: Mapped[dict[str, Any] | None]
