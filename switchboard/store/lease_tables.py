"""The lease table: one row per singleton task (the job poller), naming which daemon holds it.

It shares `models.Base.metadata`, so Alembic and the model/migration comparison see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import String, Table
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class LeaseRow(Base):
    """Who runs task `name` until `expires_at`; the holder renews it before then."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


leases = cast(Table, LeaseRow.__table__)
