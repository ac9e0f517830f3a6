"""Bulk loading of validated files: stage in a temporary table, then merge with one statement.

Staging is the only backend-specific part (PostgreSQL: COPY; SQLite: executemany in large
batches). The merge is SQLAlchemy Core and runs unchanged on both: an upsert on the table's
key, or for transactions without ``txn_id`` an insert of the rows not already stored.
Everything runs inside the caller's transaction, so a failure leaves the database untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Column, Connection, MetaData, Table, and_, func, not_, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement, Insert

from predelinq.db import schema
from predelinq.ingest.contract import TableSpec
from predelinq.ingest.validate import IngestError, Problem, ValidFile

STAGE_BATCH_ROWS = 250_000
# SQLAlchemy's own text formats for SQLite DATETIME / DATE columns, also accepted by COPY.
TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S.%6f"
DATE_TEXT = "%Y-%m-%d"

ProgressCallback = Callable[[str, int, int], None]  # table, rows done, rows total


@dataclass(frozen=True)
class TableCounts:
    rows: int  # rows in the file
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def stage_table(target: Table, name: str | None = None) -> Table:
    """A constraint-free temporary copy of ``target``'s data columns."""
    columns = [Column(c.name, c.type) for c in target.columns if c.name != "id"]
    return Table(name or f"stage_{target.name}", MetaData(), *columns, prefixes=["TEMPORARY"])


def stage_rows(
    connection: Connection,
    stage: Table,
    frame: pl.DataFrame,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Create ``stage`` and bulk-write ``frame`` (columns in stage order) into it."""
    stage.create(connection)
    text = frame.with_columns(
        pl.col(pl.Datetime).dt.strftime(TIMESTAMP_TEXT), pl.col(pl.Date).dt.strftime(DATE_TEXT)
    )
    write = _copy_batch if connection.dialect.name == "postgresql" else _executemany_batch
    for start in range(0, max(text.height, 1), STAGE_BATCH_ROWS):
        batch = text.slice(start, STAGE_BATCH_ROWS)
        write(connection, stage, batch)
        if on_progress:
            on_progress(stage.name.removeprefix("stage_"), start + batch.height, text.height)


def _copy_batch(connection: Connection, stage: Table, batch: pl.DataFrame) -> None:
    columns = ", ".join(f'"{name}"' for name in batch.columns)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    # Identifiers come from our own schema, never from input; values go through COPY.
    with cursor.copy(f"COPY {stage.name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(batch.write_csv(include_header=False, null_value=""))


def _executemany_batch(connection: Connection, stage: Table, batch: pl.DataFrame) -> None:
    placeholders = ", ".join("?" * batch.width)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    rows: Iterable[tuple] = zip(*(batch[name].to_list() for name in batch.columns), strict=True)
    # Identifiers come from our own schema, never from input; values are bound.
    cursor.executemany(f"INSERT INTO {stage.name} VALUES ({placeholders})", rows)  # noqa: S608


def check_customers_known(connection: Connection, files: list[ValidFile]) -> None:
    """Reject events and labels for customers neither stored nor in this call's customers file.

    Runs after the customers file is merged, so ``customers`` already holds both.
    """
    events = [file for file in files if file.spec.name != "customers"]
    if not events:
        return
    ids = pl.concat([file.frame.select("customer_id") for file in events]).unique()
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


def _unknown_customer_problems(events: list[ValidFile], unknown: list[str]) -> list[Problem]:
    problems = []
    for file in events:
        rows = file.frame.with_row_index("row").filter(pl.col("customer_id").is_in(unknown))
        for row, customer_id in rows.select("row", "customer_id").head(20).iter_rows():
            message = (
                f"unknown customer {customer_id!r}: not stored and not in this call's customers"
            )
            problems.append(Problem(str(file.path), message, row + 1, "customer_id"))
    return problems


def merge(connection: Connection, spec: TableSpec, stage: Table) -> tuple[int, int]:
    """Merge staged rows into the table; returns (inserted, updated)."""
    target = schema.metadata.tables[spec.name]
    count = select(func.count()).select_from(target)
    before = connection.execute(count).scalar_one()
    statements = _merge_statements(connection.dialect.name, spec, target, stage)
    # SQLAlchemy reports rowcount for INSERT only when asked to preserve it.
    options = {"preserve_rowcount": True}
    changed = sum(connection.execute(s, execution_options=options).rowcount for s in statements)
    inserted = connection.execute(count).scalar_one() - before
    return inserted, changed - inserted


def _merge_statements(dialect: str, spec: TableSpec, target: Table, stage: Table) -> list[Insert]:
    columns = spec.column_names
    has_key = and_(*(stage.c[name].is_not(None) for name in spec.key))
    rows = select(*(stage.c[name] for name in columns)).where(true())
    upsert = _insert(dialect, target).from_select(columns, rows.where(has_key))
    excluded = upsert.excluded
    new_values = {
        name: _merged_value(dialect, spec, target, excluded, name) for name in spec.row_columns
    }
    differs = or_(*(value.is_distinct_from(target.c[name]) for name, value in new_values.items()))
    statements: list[Insert] = [
        upsert.on_conflict_do_update(index_elements=list(spec.key), set_=new_values, where=differs)
    ]
    if spec.key_optional:
        same_row = and_(
            *(_same(target.c[name], stage.c[name]) for name in spec.row_columns),
            *(target.c[name].is_(None) for name in spec.key),
        )
        new_rows = rows.where(
            not_(has_key), not_(select(target.c[columns[0]]).where(same_row).exists())
        )
        statements.append(target.insert().from_select(columns, new_rows))
    return statements


def _same(stored: Column, staged: Column) -> ColumnElement:
    """Null-safe equality; plain ``=`` where nulls cannot occur, so indexes are used."""
    return stored.is_not_distinct_from(staged) if stored.nullable else stored == staged


def _insert(dialect: str, target: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(target) if dialect == "postgresql" else sqlite.insert(target)


def _merged_value(
    dialect: str, spec: TableSpec, target: Table, excluded, name: str
) -> ColumnElement:
    """The stored value after an upsert: latest wins, but a stored value is never blanked."""
    if spec.name == "customers" and name == "created_at":
        earliest = func.least if dialect == "postgresql" else func.min
        return earliest(target.c.created_at, excluded.created_at)
    if target.c[name].nullable:
        return func.coalesce(excluded[name], target.c[name])
    return excluded[name]
