"""monitoring: the prediction log, reference profiles, labels.ingested_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as they were when this revision was written.
PREDICTION_SOURCES = "source IN ('predict', 'batch', 'score')"


def _customer_id() -> sa.Column[str]:
    return sa.Column(
        "customer_id",
        sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "predictions",
        _customer_id(),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("band", sa.String(length=8), nullable=False),
        sa.Column("served_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.CheckConstraint(PREDICTION_SOURCES, name=op.f("ck_predictions_source_known")),
    )
    op.create_index(
        op.f("ix_predictions_customer_id_as_of"), "predictions", ["customer_id", "as_of"]
    )
    op.create_index(op.f("ix_predictions_served_at"), "predictions", ["served_at"])
    op.create_table(
        "model_profiles",
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.model_version"],
            name=op.f("fk_model_profiles_model_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("model_version", name=op.f("pk_model_profiles")),
    )
    # rows stored before this revision have none: they count as seen by any retrain that
    # included their customer
    with op.batch_alter_table("labels") as batch_op:
        batch_op.add_column(sa.Column("ingested_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch_op:
        batch_op.drop_column("ingested_at")
    op.drop_table("model_profiles")
    op.drop_index(op.f("ix_predictions_served_at"), table_name="predictions")
    op.drop_index(op.f("ix_predictions_customer_id_as_of"), table_name="predictions")
    op.drop_table("predictions")
