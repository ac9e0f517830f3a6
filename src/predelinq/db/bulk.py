"""Bulk writes into a temporary table, the one backend-specific write path.

PostgreSQL: COPY (CSV written by polars); SQLite: executemany in large batches. Used by
ingest (staging before the merge) and wherever a set of ids must be joined in SQL
(never a giant IN list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl
from sqlalchemy import Connection, Table

STAGE_BATCH_ROWS = 250_000
# SQLAlchemy's own text formats for SQLite DATETIME / DATE columns, also accepted by COPY.
TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S.%6f"
DATE_TEXT = "%Y-%m-%d"

ProgressCallback = Callable[[str, int, int], None]  # table, rows done, rows total


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
    # Every text value is quoted: COPY reads an unquoted `\.` line as the end of the data (it
    # cut a retrain's labels to a third), and an unquoted empty field as NULL. A null stays
    # an unquoted empty field.
    with cursor.copy(f"COPY {stage.name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(batch.write_csv(include_header=False, null_value="", quote_style="non_numeric"))


def _executemany_batch(connection: Connection, stage: Table, batch: pl.DataFrame) -> None:
    placeholders = ", ".join("?" * batch.width)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    rows: Iterable[tuple] = zip(*(batch[name].to_list() for name in batch.columns), strict=True)
    # Identifiers come from our own schema, never from input; values are bound.
    cursor.executemany(f"INSERT INTO {stage.name} VALUES ({placeholders})", rows)  # noqa: S608
