"""What the database holds: row counts, date ranges and the label positive rate."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NotRequired, TypedDict

from sqlalchemy import Connection, Engine, func, select

from predelinq.clock import utc_now
from predelinq.db import schema


class TableSummary(TypedDict):
    """One table's line: what ``predelinq summary --json`` prints for it."""

    rows: int
    first: str | None  # the earliest created_at, txn_time, due_date or observation_date
    last: str | None
    positive_rate: NotRequired[float | None]  # labels only; None without labels


def database_summary(engine: Engine) -> dict[str, TableSummary]:
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
    summary: dict[str, TableSummary] = {}
    with engine.connect() as connection:
        for name, query in queries.items():
            row = connection.execute(query).one()._mapping
            summary[name] = TableSummary(
                rows=int(row["rows"]),
                first=_display_time(row["first"]),
                last=_display_time(row["last"]),
            )
            if "positive_rate" in row:
                rate = row["positive_rate"]
                summary[name]["positive_rate"] = None if rate is None else round(float(rate), 4)
    return summary


def _display_time(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return None if value is None else str(value)


def data_as_of(connection: Connection) -> date:
    """The data's today: the day after the newest stored transaction or payment, and never
    later than today (UTC). A lender loading yesterday's events gets today; historical data
    (a replay, the synthetic lender) gets the day after its end, so that monitoring and
    triggers judge it as of its own time rather than an empty present. Today when nothing is
    stored."""
    today = utc_now().date()
    newest_txn = connection.execute(select(func.max(schema.transactions.c.txn_time))).scalar()
    newest_paid = connection.execute(select(func.max(schema.payments.c.paid_date))).scalar()
    days = [
        value.date() if isinstance(value, datetime) else value
        for value in (newest_txn, newest_paid)
        if value is not None
    ]
    if not days:
        return today
    return min(max(days) + timedelta(days=1), today)
