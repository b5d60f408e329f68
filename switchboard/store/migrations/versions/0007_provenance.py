"""Provenance: rule-set versions and activations, the event archive and collection memberships.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("rule_names", sa.JSON(), nullable=False),
        sa.Column("first_active_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_rule_versions")),
    )
    op.create_table(
        "rule_activations",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("activated_at", UTC_TIME, nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_activations")),
    )
    op.create_index(op.f("ix_rule_activations_activated_at"), "rule_activations", ["activated_at"])
    op.create_table(
        "event_archive",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("arrived_at", UTC_TIME, nullable=False),
        sa.Column("rule_version", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("dataset_id", sa.String(), nullable=True),
        sa.Column("file_id", sa.String(), nullable=True),
        sa.Column("files_seen", sa.Integer(), nullable=True),
        sa.Column("routing_key", sa.String(), server_default="", nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_archive")),
    )
    op.create_index(op.f("ix_event_archive_message_id"), "event_archive", ["message_id"])
    op.create_index(op.f("ix_event_archive_arrived_at"), "event_archive", ["arrived_at"])
    op.create_index(
        op.f("ix_event_archive_dataset_id_arrived_at"),
        "event_archive",
        ["dataset_id", "arrived_at"],
    )
    op.create_table(
        "event_memberships",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("arrived_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint(
            "rule", "key", "member", "message_id", name=op.f("pk_event_memberships")
        ),
    )
    op.create_index(op.f("ix_event_memberships_key"), "event_memberships", ["key"])


def downgrade() -> None:
    op.drop_table("event_memberships")
    op.drop_table("event_archive")
    op.drop_table("rule_activations")
    op.drop_table("rule_versions")
