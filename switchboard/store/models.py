"""The tables Switchboard keeps its state in, as SQLAlchemy 2 typed declarative models.

Alembic migrations (in `migrations/versions/`) create these tables; a change here needs a new
revision there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PENDING, SENT, FAILED = "pending", "sent", "failed"
STATUSES = (PENDING, SENT, FAILED)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores it as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value  # the driver's datetime
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class ProcessedMessage(Base):
    """The dedup ledger: every message id whose effects have been committed."""

    __tablename__ = "processed_messages"
    __table_args__ = (Index(None, "processed_at"),)  # retention prunes the oldest first

    message_id: Mapped[str] = mapped_column(String, primary_key=True)
    processed_at: Mapped[datetime]


class Dataset(Base):
    """Facts about a dataset looked up in Clowder (a cache)."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str | None]
    name_fetched_at: Mapped[datetime | None]


class DatasetFile(Base):
    """The inventory: every file seen in a dataset, `position` counting from 1 in arrival order."""

    __tablename__ = "dataset_files"
    __table_args__ = (Index(None, "dataset_id", "position"),)

    dataset_id: Mapped[str] = mapped_column(String, primary_key=True)
    file_id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String, server_default="")
    mime_type: Mapped[str] = mapped_column(String, server_default="")
    size: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime]
    position: Mapped[int] = mapped_column(Integer)


class SubmissionRow(Base):
    """The outbox: one row per submission, with the message to send and its delivery state."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "extractor", "admitted_at"),  # a target's rows in flight (throttle)
    )

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String)
    extractor: Mapped[str] = mapped_column(String)
    via: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String)
    parameters: Mapped[dict[str, Any]]
    event_message_id: Mapped[str] = mapped_column(String)
    body: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    # the sink's own settings for this row (a Ray entrypoint), see sink_registry
    options: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"))
    status: Mapped[str] = mapped_column(String(16), server_default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # The relay's claim: a fresh token per claim, and when the claim ends. Only the holder of
    # the current token may send the row or record its outcome (see SqlStore.claim_due).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    # Rule controls (0008): why a pending row is held back ("throttled"), when the throttle let
    # it go (it counts as in flight from then on), and the job a resubmission was made from.
    hold_reason: Mapped[str | None] = mapped_column(String(32))
    admitted_at: Mapped[datetime | None]
    resubmit_of: Mapped[str | None] = mapped_column(String(64))
