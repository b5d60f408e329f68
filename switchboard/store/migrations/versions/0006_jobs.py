"""Jobs: one row per submission with its status, its timeline of updates, and orphan updates.

Outbox rows already there get their job (pending, submitted or failed, as their row stands;
the original reply_to is not recovered for them, so their updates are not relayed).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=True),
        sa.Column("clowder_job_id", sa.String(), nullable=True),
        sa.Column("ray_submission_id", sa.String(), nullable=True),
        sa.Column("reply_to", sa.String(), nullable=True),
        sa.Column("correlation_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latest_message", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_target_status"), "jobs", ["target", "status"])
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"])
    op.create_index(op.f("ix_jobs_dataset_id"), "jobs", ["dataset_id"])
    op.create_index(op.f("ix_jobs_clowder_job_id"), "jobs", ["clowder_job_id"])
    op.create_index(op.f("ix_jobs_via_status"), "jobs", ["via", "status"])
    op.create_table(
        "job_updates",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("update_key", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_updates")),
        sa.UniqueConstraint("update_key", name=op.f("uq_job_updates_update_key")),
    )
    op.create_index(op.f("ix_job_updates_job_id_at"), "job_updates", ["job_id", "at"])
    op.create_table(
        "orphan_updates",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("update_key", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(), nullable=True),
        sa.Column("named_job_id", sa.String(), nullable=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orphan_updates")),
        sa.UniqueConstraint("update_key", name=op.f("uq_orphan_updates_update_key")),
    )
    op.create_index(op.f("ix_orphan_updates_received_at"), "orphan_updates", ["received_at"])
    _backfill()


def _backfill() -> None:
    """A job for each outbox row already there (forwarded updates excepted)."""
    submissions = sa.table(
        "submissions",
        *(sa.column(name) for name in ("job_id", "rule", "extractor", "via", "resource_type")),
        *(sa.column(name) for name in ("resource_id", "status", "last_error")),
        sa.column("created_at", UTC_TIME),
        sa.column("sent_at", UTC_TIME),
        sa.column("next_attempt_at", UTC_TIME),
    )
    jobs = sa.table("jobs", *(sa.column(name) for name in BACKFILLED))
    s = submissions.c
    status = sa.case((s.status == "sent", "submitted"), else_=s.status)
    dataset = sa.case((s.resource_type == "dataset", s.resource_id), else_=sa.null())
    ray = sa.case((s.via == "ray", s.job_id), else_=sa.null())
    updated = sa.case((s.sent_at.is_not(None), s.sent_at), else_=s.created_at)
    finished = sa.case((s.status == "failed", s.next_attempt_at), else_=sa.null())
    query = sa.select(
        s.job_id,
        s.rule,
        s.extractor,
        s.via,
        s.resource_type,
        s.resource_id,
        dataset,
        ray,
        status,
        s.last_error,
        s.created_at,
        s.sent_at,
        updated,
        finished,
    ).where(s.via != "status-relay")
    op.execute(jobs.insert().from_select(list(BACKFILLED), query))


BACKFILLED = (
    "job_id",
    "rule",
    "target",
    "via",
    "resource_type",
    "resource_id",
    "dataset_id",
    "ray_submission_id",
    "status",
    "latest_message",
    "created_at",
    "sent_at",
    "updated_at",
    "finished_at",
)


def downgrade() -> None:
    op.drop_table("orphan_updates")
    op.drop_table("job_updates")
    op.drop_table("jobs")
