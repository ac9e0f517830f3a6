"""Bulk loading of validated files: stage in a temporary table, then merge set-based.

Staging (``db.bulk``: PostgreSQL COPY, SQLite executemany, a chunk at a time) is the only
backend-specific part. The merge is SQLAlchemy Core and runs unchanged on both: an
``UPDATE ... FROM`` of stored rows whose values changed, then an ``INSERT ... SELECT`` of
rows whose key is not stored (for transactions without ``txn_id``: rows not stored as a
whole). A table with an ``ingested_at`` column (labels) gets the ingest's time, one value per
merge, on the rows it inserts and the rows it changes. Everything runs inside the caller's
transaction, so a failure leaves the database untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    MetaData,
    Table,
    and_,
    func,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ColumnElement, Insert, Update

from predelinq.clock import utc_now
from predelinq.db import schema
from predelinq.db.bulk import stage_rows
from predelinq.db.locks import schema_xact_lock
from predelinq.ingest.contract import TableSpec
from predelinq.ingest.problems import IngestError, Problem, clip
from predelinq.ingest.validate import FileCheck

INGEST_LOCK_KEY = 0x70696E67  # "ping": one ingest at a time, with the schema as second key


@dataclass(frozen=True)
class TableCounts:
    rows: int  # rows in the file
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def check_customers_known(connection: Connection, files: list[FileCheck]) -> None:
    """Reject events and labels for customers neither stored nor in this call's customers file.

    Runs after the customers file is merged, so ``customers`` already holds both. Only the
    distinct ids are staged; the rows of unknown ones are found by reading the files again,
    which happens only when the call is rejected.
    """
    events = [file for file in files if file.spec.name != "customers"]
    if not events:
        return
    ids = pl.concat([file.customer_ids for file in events]).unique().to_frame("customer_id")
    customer_id = Column("customer_id", schema.customers.c.customer_id.type)
    stage = Table("stage_customer_ids", MetaData(), customer_id, prefixes=["TEMPORARY"])
    stage_rows(connection, stage, ids)
    known = select(schema.customers.c.customer_id).where(
        schema.customers.c.customer_id == stage.c.customer_id
    )
    unknown_query = select(stage.c.customer_id).where(not_(known.exists())).limit(20)
    unknown = [row[0] for row in connection.execute(unknown_query)]
    stage.drop(connection)
    if unknown:
        raise IngestError(_unknown_customer_problems(events, unknown))


def _unknown_customer_problems(events: list[FileCheck], unknown: list[str]) -> list[Problem]:
    problems = []
    for file in events:
        reread = FileCheck(file.spec, file.path, now=file.now)
        found = 0
        for chunk in reread.chunks():
            rows = chunk.with_row_index("row", offset=reread.rows - chunk.height + 1).filter(
                pl.col("customer_id").is_in(unknown)
            )
            for row, customer_id in rows.select("row", "customer_id").head(20).iter_rows():
                message = (
                    f"unknown customer {clip(customer_id)!r}: "
                    "not stored and not in this call's customers"
                )
                problems.append(Problem(str(file.path), message, row, "customer_id"))
            found += rows.height
            if found >= 20:
                break
    return problems


def merge(
    connection: Connection, spec: TableSpec, stage: Table, *, now: datetime | None = None
) -> tuple[int, int]:
    """Merge staged rows into the table; returns (inserted, updated). ``now`` (default: the
    current UTC time) is the ``ingested_at`` of the rows inserted or changed, where the table
    has that column.

    Two set-based statements instead of ``INSERT ... ON CONFLICT``: an ``UPDATE ... FROM``
    of stored rows whose values changed, then an anti-join ``INSERT`` of rows not stored.
    On PostgreSQL this was twice as fast as the upsert for millions of rows (speculative
    insertion costs per row); concurrent ingests are serialised by ``lock_for_ingest``.
    """
    target = schema.metadata.tables[spec.name]
    dialect = connection.dialect.name
    # SQLAlchemy reports rowcount for INSERT only when asked to preserve it.
    options = {"preserve_rowcount": True}
    stamp = _stamp(target, utc_now() if now is None else now)
    updated = connection.execute(_update_changed(dialect, spec, target, stage, stamp)).rowcount
    inserted = sum(
        connection.execute(statement, execution_options=options).rowcount
        for statement in _insert_new(dialect, spec, target, stage, stamp)
    )
    return inserted, updated


def lock_for_ingest(connection: Connection) -> None:
    """Serialise ingests into one schema: a PostgreSQL transaction advisory lock (ingests into
    other schemas of the database go on); SQLite's write lock suffices."""
    if connection.dialect.name == "postgresql":
        connection.execute(schema_xact_lock(INGEST_LOCK_KEY))


def _stamp(target: Table, now: datetime) -> dict[str, ColumnElement[Any]]:
    """The ingest's time for the table's ``ingested_at`` column; nothing for the others."""
    return {"ingested_at": literal(now, DateTime)} if "ingested_at" in target.c else {}


def _update_changed(
    dialect: str,
    spec: TableSpec,
    target: Table,
    stage: Table,
    stamp: dict[str, ColumnElement[Any]],
) -> Update:
    new_values = {
        name: _merged_value(dialect, spec, target, stage, name) for name in spec.row_columns
    }
    differs = or_(*(value.is_distinct_from(target.c[name]) for name, value in new_values.items()))
    same_key = and_(*(target.c[name] == stage.c[name] for name in spec.key))
    return update(target).where(same_key, differs).values(new_values | stamp)


def _insert_new(
    dialect: str,
    spec: TableSpec,
    target: Table,
    stage: Table,
    stamp: dict[str, ColumnElement[Any]],
) -> list[Insert]:
    """Rows whose key is not stored; for keyless transactions, rows not stored as a whole.

    SQLite: ``ON CONFLICT DO NOTHING`` on the key instead of the anti-join. An ``INSERT``
    whose ``SELECT`` reads its own target is first copied whole into a temporary table, held
    in memory (``temp_store=MEMORY``): 15 million staged transactions took gigabytes.
    """
    columns = spec.column_names + list(stamp)
    rows = select(*(stage.c[name] for name in spec.column_names), *stamp.values())
    has_key = and_(*(stage.c[name].is_not(None) for name in spec.key))
    if dialect == "sqlite":
        keyed: Insert = (
            sqlite_insert(target)
            .from_select(columns, rows.where(has_key))
            .on_conflict_do_nothing(index_elements=list(spec.key))
        )
    else:
        stored_key = select(target.c[columns[0]]).where(
            and_(*(target.c[name] == stage.c[name] for name in spec.key))
        )
        keyed = target.insert().from_select(columns, rows.where(has_key, ~stored_key.exists()))
    statements = [keyed]
    if spec.key_optional:
        stored_row = select(target.c[columns[0]]).where(
            *(_same(target.c[name], stage.c[name]) for name in spec.row_columns),
            *(target.c[name].is_(None) for name in spec.key),
        )
        statements.append(
            target.insert().from_select(columns, rows.where(~has_key, ~stored_row.exists()))
        )
    return statements


def _same(stored: Column[Any], staged: Column[Any]) -> ColumnElement[bool]:
    """Null-safe equality; plain ``=`` where nulls cannot occur, so indexes are used."""
    return stored.is_not_distinct_from(staged) if stored.nullable else stored == staged


def _merged_value(
    dialect: str, spec: TableSpec, target: Table, stage: Table, name: str
) -> ColumnElement[Any]:
    """The stored value after a merge: latest wins, but a stored value is never blanked."""
    if spec.name == "customers" and name == "created_at":
        earliest = func.least if dialect == "postgresql" else func.min
        return earliest(target.c.created_at, stage.c.created_at)
    if target.c[name].nullable:
        return func.coalesce(stage.c[name], target.c[name])
    return stage.c[name]
