"""The ingest contract: which columns each input file has, their kinds and their rules.

One ``ColumnSpec`` per column; validation (``validate.py``) and loading (``load.py``) both
read from here, so the contract is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "float", "int", "timestamp", "date"]
CREDIT, DEBIT = "credit", "debit"  # a transaction's txn_type


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    required: bool = False  # the column must be present and never empty
    max_length: int | None = None
    minimum: float | None = None
    minimum_exclusive: bool = False
    maximum: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    # True: rows whose key is empty are identified by all their other columns instead
    key_optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def row_columns(self) -> list[str]:
        """The columns that identify a row whose key is empty (``key_optional``)."""
        return [name for name in self.column_names if name not in self.key]

    @property
    def required_names(self) -> list[str]:
        return [column.name for column in self.columns if column.required]


def _customer_id() -> ColumnSpec:
    return ColumnSpec("customer_id", "text", required=True, max_length=255)


CUSTOMERS = TableSpec(
    name="customers",
    columns=(
        _customer_id(),
        # absent or empty: first seen now, at ingest time
        ColumnSpec("created_at", "timestamp"),
        ColumnSpec("monthly_income", "float", minimum=0),
        ColumnSpec("salary_day", "int", minimum=1, maximum=31),
        ColumnSpec("credit_limit", "float", minimum=0),
    ),
    key=("customer_id",),
)

TRANSACTIONS = TableSpec(
    name="transactions",
    columns=(
        ColumnSpec("txn_id", "text", max_length=255),
        _customer_id(),
        ColumnSpec("txn_time", "timestamp", required=True),
        ColumnSpec("amount", "float", required=True, minimum=0, minimum_exclusive=True),
        ColumnSpec("txn_type", "text", required=True, choices=(CREDIT, DEBIT)),
        ColumnSpec("category", "text", max_length=64),
        ColumnSpec("merchant_id", "text", max_length=255),
        ColumnSpec("channel", "text", max_length=32),
        # the account balance right after the transaction, as core-banking exports carry it:
        # any finite number (overdrawn accounts are negative); absent or empty: not known
        ColumnSpec("balance_after", "float"),
    ),
    key=("txn_id",),
    key_optional=True,  # rows without txn_id are de-duplicated on the whole row
)

PAYMENTS = TableSpec(
    name="payments",
    columns=(
        _customer_id(),
        ColumnSpec("due_date", "date", required=True),
        ColumnSpec("amount_due", "float", required=True, minimum=0),
        ColumnSpec("amount_paid", "float", minimum=0),
        ColumnSpec("paid_date", "date"),
    ),
    key=("customer_id", "due_date"),
)

LABELS = TableSpec(
    name="labels",
    columns=(
        _customer_id(),
        ColumnSpec("observation_date", "date", required=True),
        ColumnSpec("label", "int", required=True, minimum=0, maximum=1),
        ColumnSpec("days_to_default", "int", minimum=0),
    ),
    key=("customer_id", "observation_date"),
)

# Load order matters: events and labels refer to customers.
TABLE_SPECS = {spec.name: spec for spec in (CUSTOMERS, TRANSACTIONS, PAYMENTS, LABELS)}
