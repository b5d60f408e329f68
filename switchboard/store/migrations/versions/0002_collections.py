"""Collections: current state per (rule, key), members, firings and manifests.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """The collection tables, one `create_table` each; long because a migration is a flat,
    frozen list of DDL read top to bottom, not logic to split."""
    op.create_table(
        "collections",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=True),
        sa.Column("opened_at", UTC_TIME, nullable=False),
        sa.Column("last_member_at", UTC_TIME, nullable=True),
        sa.Column("quiet_deadline", UTC_TIME, nullable=True),
        sa.Column("trigger", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("rule", "key", name=op.f("pk_collections")),
    )
    op.create_index(op.f("ix_collections_key"), "collections", ["key"])
    op.create_index(
        op.f("ix_collections_state_quiet_deadline"), "collections", ["state", "quiet_deadline"]
    )
    op.create_table(
        "collection_members",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("extractor", sa.String(), nullable=True),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint(
            "rule", "key", "generation", "member", name=op.f("pk_collection_members")
        ),
    )
    op.create_table(
        "collection_firings",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("fired_at", UTC_TIME, nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("rule", "key", "generation", name=op.f("pk_collection_firings")),
    )
    op.create_index(op.f("ix_collection_firings_fired_at"), "collection_firings", ["fired_at"])
    op.create_table(
        "manifests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("file_path", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifests")),
    )
    op.create_table(
        "manifest_members",
        sa.Column("manifest_id", sa.String(length=64), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("manifest_id", "member", name=op.f("pk_manifest_members")),
    )


def downgrade() -> None:
    op.drop_table("manifest_members")
    op.drop_table("manifests")
    op.drop_index(op.f("ix_collection_firings_fired_at"), table_name="collection_firings")
    op.drop_table("collection_firings")
    op.drop_table("collection_members")
    op.drop_index(op.f("ix_collections_state_quiet_deadline"), table_name="collections")
    op.drop_index(op.f("ix_collections_key"), table_name="collections")
    op.drop_table("collections")
