"""Small, explicit test data: rows as dicts, written as the contract's CSV files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from predelinq.db import schema
from predelinq.retraining.result import RetrainResult


def make_customer(customer_id: str = "C1", **overrides: Any) -> dict[str, Any]:
    row = {
        "customer_id": customer_id,
        "created_at": "2024-01-01T00:00:00",
        "monthly_income": "3500",
        "salary_day": "25",
        "credit_limit": "5000",
    }
    return {**row, **overrides}


def make_transaction(
    customer_id: str = "C1", txn_id: str = "T1", **overrides: Any
) -> dict[str, Any]:
    row = {
        "txn_id": txn_id,
        "customer_id": customer_id,
        "txn_time": "2024-02-01T12:00:00",
        "amount": "42.50",
        "txn_type": "debit",
        "category": "groceries",
        "merchant_id": "M1",
        "channel": "card",
    }
    return {**row, **overrides}


def make_payment(
    customer_id: str = "C1", due_date: str = "2024-02-15", **overrides: Any
) -> dict[str, Any]:
    row = {
        "customer_id": customer_id,
        "due_date": due_date,
        "amount_due": "300",
        "amount_paid": "300",
        "paid_date": "2024-02-14",
    }
    return {**row, **overrides}


def make_label(
    customer_id: str = "C1", observation_date: str = "2024-04-01", **overrides: Any
) -> dict[str, Any]:
    row = {
        "customer_id": customer_id,
        "observation_date": observation_date,
        "label": "0",
        "days_to_default": "",
    }
    return {**row, **overrides}


def make_history(customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """A consistent small set of rows for all four tables."""
    return {
        "customers": [make_customer(c) for c in customer_ids],
        "transactions": [
            make_transaction(c, f"{c}-T{k}", txn_time=f"2024-02-0{k + 1}T10:00:00")
            for c in customer_ids
            for k in range(3)
        ],
        "payments": [make_payment(c, f"2024-0{m}-15") for c in customer_ids for m in (2, 3)],
        "labels": [
            make_label(c, "2024-04-01", label=str(i % 2)) for i, c in enumerate(customer_ids)
        ],
    }


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_files(directory: Path, tables: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    return {name: write_csv(directory / f"{name}.csv", rows) for name, rows in tables.items()}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, sorted: compare before and after to prove nothing changed."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (
                    tuple(row)
                    for row in connection.execute(select(*[c for c in table.c if c.name != "id"]))
                ),
                key=repr,
            )
            for table in schema.DATA_TABLES
        }


def table_counts(engine: Engine) -> dict[str, int]:
    return {name: len(rows) for name, rows in snapshot(engine).items()}


def read_back(engine: Engine, table: str) -> pl.DataFrame:
    with engine.connect() as connection:
        result = connection.execute(select(schema.metadata.tables[table]))
        return pl.DataFrame([dict(row._mapping) for row in result], infer_schema_length=None)


def version_of(result: RetrainResult) -> str:
    """The version a retrain registered (every retrain but a failed one registers one)."""
    assert result.model_version is not None, result
    return result.model_version
