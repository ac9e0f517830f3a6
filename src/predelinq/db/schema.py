"""The tables, as SQLAlchemy Core. Changes to them ship as Alembic migrations.

Timestamps are stored as naive UTC; ``customer_id`` is text in every table.

Events and labels carry no foreign-key constraint to ``customers``: ingest checks every
call's customer ids in one set-based query inside the same transaction, and nothing deletes
customers. A per-row foreign-key trigger halved PostgreSQL's bulk-load rate (measured).
On PostgreSQL, identifier columns use the "C" collation: byte order, the same on every
server, and much cheaper to index than a locale's collation.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.types import TypeEngine

CUSTOMER_ID_MAX_LENGTH = 255


def _identifier(length: int = 255) -> TypeEngine[str]:
    """Opaque identifier text: byte-order collation on PostgreSQL."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _customer_id() -> Column:
    return Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), nullable=False)


customers = Table(
    "customers",
    metadata,
    Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("monthly_income", Float),
    Column("salary_day", SmallInteger),
    Column("credit_limit", Float),
    CheckConstraint("salary_day BETWEEN 1 AND 31", name="salary_day_range"),
    Index(None, "created_at"),
)

transactions = Table(
    "transactions",
    metadata,
    # No surrogate key: rows are identified by txn_id, or when it is empty by all columns.
    Column("txn_id", _identifier(), unique=True),
    _customer_id(),
    Column("txn_time", DateTime, nullable=False),
    Column("amount", Float, nullable=False),
    Column("txn_type", String(6), nullable=False),
    Column("category", String(64)),
    Column("merchant_id", String(255)),
    Column("channel", String(32)),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("txn_type IN ('credit', 'debit')", name="txn_type_known"),
    Index(None, "customer_id", "txn_time"),
)

payments = Table(
    "payments",
    metadata,
    _customer_id(),
    Column("due_date", Date, nullable=False),
    Column("amount_due", Float, nullable=False),
    Column("amount_paid", Float),
    Column("paid_date", Date),
    CheckConstraint("amount_due >= 0", name="amount_due_non_negative"),
    CheckConstraint("amount_paid >= 0", name="amount_paid_non_negative"),
    PrimaryKeyConstraint("customer_id", "due_date"),
)

labels = Table(
    "labels",
    metadata,
    _customer_id(),
    Column("observation_date", Date, nullable=False),
    Column("label", SmallInteger, nullable=False),
    Column("days_to_default", Integer),
    CheckConstraint("label IN (0, 1)", name="label_binary"),
    PrimaryKeyConstraint("customer_id", "observation_date"),
    Index(None, "observation_date"),
)

DATA_TABLES = (customers, transactions, payments, labels)
