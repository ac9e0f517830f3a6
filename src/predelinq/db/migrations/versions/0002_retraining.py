"""retraining tables and model registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:11:47.974566
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "champion_changes",
        sa.Column("change_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("from_version", sa.String(length=64), nullable=True),
        sa.Column("to_version", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_champion_changes")),
    )
    op.create_table(
        "customer_training_status",
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_trained", sa.DateTime(), nullable=True),
        sa.Column(
            "included_in_training", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_training_status")),
    )
    op.create_table(
        "model_retraining_log",
        sa.Column("retrain_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("retrain_date", sa.DateTime(), nullable=False),
        sa.Column("customers_trained", sa.Integer(), nullable=True),
        sa.Column("samples_trained", sa.Integer(), nullable=True),
        sa.Column("auc_score", sa.Float(), nullable=True),
        sa.Column("precision_score", sa.Float(), nullable=True),
        sa.Column("recall_score", sa.Float(), nullable=True),
        sa.Column("f1_score", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("trigger_reason", sa.Text(), nullable=True),
        sa.Column("training_duration_seconds", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("promoted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('success', 'rejected', 'failed')",
            name=op.f("ck_model_retraining_log_status_known"),
        ),
        sa.PrimaryKeyConstraint("retrain_id", name=op.f("pk_model_retraining_log")),
    )
    with op.batch_alter_table("model_retraining_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_retraining_log_retrain_date"), ["retrain_date"], unique=False
        )

    op.create_table(
        "model_versions",
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("auc_score", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("model_version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "retraining_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_retraining_lease")),
    )
    op.create_table(
        "model_champion",
        sa.Column("slot", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.CheckConstraint("slot = 1", name=op.f("ck_model_champion_single_slot")),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.model_version"],
            name=op.f("fk_model_champion_model_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_model_champion")),
    )


def downgrade() -> None:
    op.drop_table("model_champion")
    op.drop_table("retraining_lease")
    op.drop_table("model_versions")
    with op.batch_alter_table("model_retraining_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_retraining_log_retrain_date"))

    op.drop_table("model_retraining_log")
    op.drop_table("customer_training_status")
    op.drop_table("champion_changes")
