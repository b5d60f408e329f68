"""The job tables: one row per submission, its timeline of updates, and orphan updates.

They share `models.Base.metadata`, so Alembic and the model/migration comparison see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class JobRow(Base):
    """One job per submission, keyed by our job id (created with its outbox row)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "target", "status"),
        Index(None, "created_at"),
        Index(None, "dataset_id"),
        Index(None, "clowder_job_id"),
        Index(None, "via", "status"),
    )

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String)
    target: Mapped[str] = mapped_column(String)
    via: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String)
    dataset_id: Mapped[str | None] = mapped_column(String)
    clowder_job_id: Mapped[str | None] = mapped_column(String)
    ray_submission_id: Mapped[str | None] = mapped_column(String)
    # where the extractor's updates went before we put our status queue there
    reply_to: Mapped[str | None] = mapped_column(String)
    correlation_id: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(16))
    latest_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class JobUpdateRow(Base):
    """One timeline row: an update of a job, at its own time, received when, from where.

    `update_key` identifies the update (a redelivery has the same key and adds nothing)."""

    __tablename__ = "job_updates"
    __table_args__ = (Index(None, "job_id", "at"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    update_key: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))


class OrphanUpdateRow(Base):
    """An update naming no job we know: kept (and listed), not dropped."""

    __tablename__ = "orphan_updates"
    __table_args__ = (Index(None, "received_at"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    update_key: Mapped[str] = mapped_column(String(64), unique=True)
    correlation_id: Mapped[str | None] = mapped_column(String)
    named_job_id: Mapped[str | None] = mapped_column(String)
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]]


jobs = cast(Table, JobRow.__table__)
job_updates = cast(Table, JobUpdateRow.__table__)
orphan_updates = cast(Table, OrphanUpdateRow.__table__)
