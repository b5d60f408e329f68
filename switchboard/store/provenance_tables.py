"""The provenance tables: rule-set versions and their activations, the event archive, memberships.

They share `models.Base.metadata`, so Alembic and the model/migration comparison see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

# SQLite numbers rows only through an INTEGER primary key; PostgreSQL gets a 64-bit identity.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class RuleVersionRow(Base):
    """One distinct rule set, stored once per content hash with every file's text."""

    __tablename__ = "rule_versions"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)  # the hash's first 12
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict[str, Any]]  # {"files": [{"path", "text"}]} in load order
    rule_names: Mapped[dict[str, Any]]  # {"rules": [names]}
    first_active_at: Mapped[datetime]


class RuleActivationRow(Base):
    """Each time a version became active: daemon start, reload, replay or backfill."""

    __tablename__ = "rule_activations"
    __table_args__ = (Index(None, "activated_at"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(16))
    activated_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(16))  # start | reload | replay | backfill


class ArchivedEventRow(Base):
    """One consumed event: what it was (secrets removed), when it came, and what it led to."""

    __tablename__ = "event_archive"
    __table_args__ = (
        Index(None, "message_id"),
        Index(None, "arrived_at"),
        Index(None, "dataset_id", "arrived_at"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String)
    arrived_at: Mapped[datetime]
    rule_version: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # processed | dead-lettered
    kind: Mapped[str | None] = mapped_column(String(32))
    dataset_id: Mapped[str | None] = mapped_column(String)
    file_id: Mapped[str | None] = mapped_column(String)
    files_seen: Mapped[int | None] = mapped_column(Integer)  # the dataset's files at the time
    routing_key: Mapped[str] = mapped_column(String, server_default="")
    event: Mapped[dict[str, Any]]  # the parsed event's fields and the AMQP properties
    body: Mapped[str] = mapped_column(Text)  # the raw body as JSON text, secrets removed
    outcome: Mapped[dict[str, Any]]


class EventMembershipRow(Base):
    """Which event added which member to which collection (for provenance of a firing)."""

    __tablename__ = "event_memberships"
    __table_args__ = (Index(None, "key"),)

    rule: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    member: Mapped[str] = mapped_column(String, primary_key=True)
    message_id: Mapped[str] = mapped_column(String, primary_key=True)
    arrived_at: Mapped[datetime]
