"""Initial state: dedup ledger, dataset cache, file inventory and submission outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("processed_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_processed_messages")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("name_fetched_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    op.create_table(
        "dataset_files",
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("file_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), server_default="", nullable=False),
        sa.Column("mime_type", sa.String(), server_default="", nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "file_id", name=op.f("pk_dataset_files")),
    )
    op.create_index(
        op.f("ix_dataset_files_dataset_id_position"),
        "dataset_files",
        ["dataset_id", "position"],
    )
    op.create_table(
        "submissions",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("extractor", sa.String(), nullable=False),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("event_message_id", sa.String(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_submissions")),
    )
    op.create_index(
        op.f("ix_submissions_status_next_attempt_at"),
        "submissions",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_submissions_status_next_attempt_at"), table_name="submissions")
    op.drop_table("submissions")
    op.drop_index(op.f("ix_dataset_files_dataset_id_position"), table_name="dataset_files")
    op.drop_table("dataset_files")
    op.drop_table("datasets")
    op.drop_table("processed_messages")
