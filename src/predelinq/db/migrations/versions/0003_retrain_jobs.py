"""retrain jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:51:46.765751
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retrain_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("promoted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'success', 'rejected', 'failed')",
            name=op.f("ck_retrain_jobs_status_known"),
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_retrain_jobs")),
    )
    with op.batch_alter_table("retrain_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_jobs_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_jobs_created_at"))

    op.drop_table("retrain_jobs")
