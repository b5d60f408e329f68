"""Intake attempts: counters of redelivered deliveries, to dead-letter one that crashes the daemon.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "intake_attempts",
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", UTC_TIME, nullable=False),
        sa.Column("last_attempt_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_intake_attempts")),
    )


def downgrade() -> None:
    op.drop_table("intake_attempts")
