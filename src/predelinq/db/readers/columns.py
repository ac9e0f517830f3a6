"""The columns the features read, declared once: the readers' select lists, the Arrow types
they return, and the columns the feature engines take (``features/events.py``) all come
from ``COLUMNS``.

The types are those of the rows as PostgreSQL's drivers return them. SQLite returns times
and dates as the text it stores, so its reads are typed by ``sqlite_schema``; the engines
parse that text (``features/events.py``).
"""

from __future__ import annotations

import pyarrow as pa

CUSTOMERS = "customers"
TRANSACTIONS = "transactions"
PAYMENTS = "payments"

COLUMNS: dict[str, dict[str, pa.DataType]] = {
    CUSTOMERS: {
        "customer_id": pa.string(),
        "created_at": pa.timestamp("us"),
        "monthly_income": pa.float64(),
        "salary_day": pa.int64(),
        "credit_limit": pa.float64(),
    },
    TRANSACTIONS: {
        "customer_id": pa.string(),
        "txn_id": pa.string(),
        "txn_time": pa.timestamp("us"),
        "amount": pa.float64(),
        "txn_type": pa.string(),
        "category": pa.string(),
        "merchant_id": pa.string(),
        "channel": pa.string(),
        "balance_after": pa.float64(),
    },
    PAYMENTS: {
        "customer_id": pa.string(),
        "due_date": pa.date32(),
        "amount_due": pa.float64(),
        "amount_paid": pa.float64(),
        "paid_date": pa.date32(),
    },
}


def schema(table: str) -> pa.Schema:
    """The Arrow schema of ``table``'s rows as read from PostgreSQL."""
    return pa.schema(list(COLUMNS[table].items()))


def sqlite_schema(table: str) -> pa.Schema:
    """The Arrow schema of ``table``'s rows as read from SQLite: times and dates as text."""
    return pa.schema(
        [(name, pa.string() if _is_time(kind) else kind) for name, kind in COLUMNS[table].items()]
    )


def select_list(table: str, alias: str | None = None) -> str:
    """``table``'s columns for a SELECT, each prefixed by ``alias`` when given."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{name}" for name in COLUMNS[table])


def _is_time(kind: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(kind) or pa.types.is_date(kind))


# Each table's Arrow schema as each engine's driver returns its rows.
SCHEMAS = {
    "postgresql": {table: schema(table) for table in COLUMNS},
    "sqlite": {table: sqlite_schema(table) for table in COLUMNS},
}
