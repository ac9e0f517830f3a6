"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:27:48.642538
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("monthly_income", sa.Float(), nullable=True),
        sa.Column("salary_day", sa.SmallInteger(), nullable=True),
        sa.Column("credit_limit", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "salary_day BETWEEN 1 AND 31", name=op.f("ck_customers_salary_day_range")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_created_at"), ["created_at"], unique=False)

    op.create_table(
        "labels",
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("observation_date", sa.Date(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("days_to_default", sa.Integer(), nullable=True),
        sa.CheckConstraint("label IN (0, 1)", name=op.f("ck_labels_label_binary")),
        sa.PrimaryKeyConstraint("customer_id", "observation_date", name=op.f("pk_labels")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_labels_observation_date"), ["observation_date"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_due", sa.Float(), nullable=False),
        sa.Column("amount_paid", sa.Float(), nullable=True),
        sa.Column("paid_date", sa.Date(), nullable=True),
        sa.CheckConstraint("amount_due >= 0", name=op.f("ck_payments_amount_due_non_negative")),
        sa.CheckConstraint("amount_paid >= 0", name=op.f("ck_payments_amount_paid_non_negative")),
        sa.PrimaryKeyConstraint("customer_id", "due_date", name=op.f("pk_payments")),
    )
    op.create_table(
        "transactions",
        sa.Column(
            "txn_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "customer_id",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("txn_time", sa.DateTime(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("txn_type", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("merchant_id", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "txn_type IN ('credit', 'debit')", name=op.f("ck_transactions_txn_type_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transactions_amount_positive")),
        sa.UniqueConstraint("txn_id", name=op.f("uq_transactions_txn_id")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transactions_customer_id_txn_time"),
            ["customer_id", "txn_time"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_customer_id_txn_time"))

    op.drop_table("transactions")
    op.drop_table("payments")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_observation_date"))

    op.drop_table("labels")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_created_at"))

    op.drop_table("customers")
