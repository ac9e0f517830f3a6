"""What the database holds: row counts, date ranges and the label positive rate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from predelinq.db import schema


def database_summary(engine: Engine) -> dict[str, dict]:
    """One aggregate query per table; nothing is loaded into Python row by row."""
    queries = {
        "customers": select(
            func.count().label("rows"),
            func.min(schema.customers.c.created_at).label("first"),
            func.max(schema.customers.c.created_at).label("last"),
        ),
        "transactions": select(
            func.count().label("rows"),
            func.min(schema.transactions.c.txn_time).label("first"),
            func.max(schema.transactions.c.txn_time).label("last"),
        ),
        "payments": select(
            func.count().label("rows"),
            func.min(schema.payments.c.due_date).label("first"),
            func.max(schema.payments.c.due_date).label("last"),
        ),
        "labels": select(
            func.count().label("rows"),
            func.min(schema.labels.c.observation_date).label("first"),
            func.max(schema.labels.c.observation_date).label("last"),
            func.avg(schema.labels.c.label).label("positive_rate"),
        ),
    }
    with engine.connect() as connection:
        summary = {
            name: dict(connection.execute(query).one()._mapping) for name, query in queries.items()
        }
    for row in summary.values():
        for key in ("first", "last"):
            row[key] = _display_time(row[key])
        if row.get("positive_rate") is not None:
            row["positive_rate"] = round(float(row["positive_rate"]), 4)
    return summary


def _display_time(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return None if value is None else str(value)
