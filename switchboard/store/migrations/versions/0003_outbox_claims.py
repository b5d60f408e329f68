"""Outbox claims: a token and an end time per claim, so only the claim's holder sends a row;
an index on the dedup ledger's time, so retention can prune it in small batches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("claimed_until", UTC_TIME, nullable=True))
    op.create_index(
        op.f("ix_processed_messages_processed_at"), "processed_messages", ["processed_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_messages_processed_at"), table_name="processed_messages")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claim_token")
