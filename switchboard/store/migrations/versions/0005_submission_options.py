"""Submission options: a sink's own settings (a Ray entrypoint) get an outbox column.

Until now a via-ray row kept `{"entrypoint", "runtime_env"}` under `properties["ray"]`; they
move into the new `options` column (and out of the AMQP properties).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAY_PROPERTY = "ray"  # where rows written before this revision keep their Ray options

submissions = sa.table(
    "submissions",
    sa.column("job_id", sa.String()),
    sa.column("properties", sa.JSON()),
    sa.column("options", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(
            sa.Column("options", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    connection = op.get_bind()
    rows = connection.execute(sa.select(submissions.c.job_id, submissions.c.properties))
    for job_id, properties in list(rows):
        if not isinstance(properties, dict) or RAY_PROPERTY not in properties:
            continue
        kept = dict(properties)
        ray = kept.pop(RAY_PROPERTY)
        options: dict[str, Any] = {}
        if isinstance(ray, dict):
            options = {k: v for k, v in ray.items() if v is not None}
        connection.execute(
            submissions.update()
            .where(submissions.c.job_id == job_id)
            .values(properties=kept, options=options)
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(submissions.c.job_id, submissions.c.properties, submissions.c.options)
    )
    for job_id, properties, options in list(rows):
        if options:
            restored = {**(properties or {}), RAY_PROPERTY: options}
            connection.execute(
                submissions.update()
                .where(submissions.c.job_id == job_id)
                .values(properties=restored)
            )
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("options")
