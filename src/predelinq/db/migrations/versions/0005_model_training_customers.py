"""model_training_customers, model_retraining_log.decision

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions registered before this revision have no rows here: the gate then falls back to
    # customers that no retrain at all has included.
    op.create_table(
        "model_training_customers",
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("learnt", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "part IN ('fit', 'validation', 'holdout')",
            name=op.f("ck_model_training_customers_part_known"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.model_version"],
            name=op.f("fk_model_training_customers_model_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint(
            "model_version", "customer_id", name=op.f("pk_model_training_customers")
        ),
    )

    # the gate's verdict on each retrain, beside its status (nullable: older rows have none)
    with op.batch_alter_table("model_retraining_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_retraining_log", schema=None) as batch_op:
        batch_op.drop_column("decision")
    op.drop_table("model_training_customers")
