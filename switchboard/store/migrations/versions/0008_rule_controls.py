"""Rule controls: debounces, per-target throttles, operator actions, and outbox hold columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "debounces",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("deadline", UTC_TIME, nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_event_at", UTC_TIME, nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", name=op.f("pk_debounces")),
    )
    op.create_index(op.f("ix_debounces_deadline"), "debounces", ["deadline"])
    op.create_table(
        "target_throttles",
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_target_throttles")),
    )
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_actions")),
    )
    op.create_index(op.f("ix_operator_actions_subject"), "operator_actions", ["subject"])
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("hold_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("admitted_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("resubmit_of", sa.String(length=64), nullable=True))
        batch.create_index(
            op.f("ix_submissions_extractor_admitted_at"), ["extractor", "admitted_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_index(op.f("ix_submissions_extractor_admitted_at"))
        batch.drop_column("resubmit_of")
        batch.drop_column("admitted_at")
        batch.drop_column("hold_reason")
    op.drop_index(op.f("ix_operator_actions_subject"), table_name="operator_actions")
    op.drop_table("operator_actions")
    op.drop_table("target_throttles")
    op.drop_index(op.f("ix_debounces_deadline"), table_name="debounces")
    op.drop_table("debounces")
