"""Bulk writes into a temporary table, the one backend-specific write path.

PostgreSQL: COPY (CSV written by polars); SQLite: executemany in large batches. Used by
ingest (staging before the merge) and wherever a set of ids must be joined in SQL
(never a giant IN list).

``StageArea`` is ingest's staging for files of any size: PostgreSQL temporary tables filled
by COPY; on SQLite a scratch database file beside the database, filled by ADBC's bulk ingest
and attached to the ingest's connection. SQLite's own temporary tables live in memory
(``temp_store=MEMORY``), so a large file staged there grew the process by its size; and
ADBC binds Arrow columns in C, four times the rate of ``executemany`` (measured).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
from sqlalchemy import Column, Connection, MetaData, Table
from sqlalchemy.schema import CreateTable

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
    for start in range(0, max(frame.height, 1), STAGE_BATCH_ROWS):
        batch = frame.slice(start, STAGE_BATCH_ROWS)
        append_rows(connection, stage, batch)
        if on_progress:
            on_progress(stage.name.removeprefix("stage_"), start + batch.height, frame.height)


def append_rows(connection: Connection, stage: Table, frame: pl.DataFrame) -> None:
    """Bulk-write ``frame`` (columns in stage order) into the existing table ``stage``, in
    one COPY or one ``executemany``: the caller sizes the batch."""
    text = frame.with_columns(
        pl.col(pl.Datetime).dt.strftime(TIMESTAMP_TEXT), pl.col(pl.Date).dt.strftime(DATE_TEXT)
    )
    write = _copy_batch if connection.dialect.name == "postgresql" else _executemany_batch
    write(connection, stage, text)


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
    rows: Iterable[tuple[object, ...]] = zip(
        *(batch[name].to_list() for name in batch.columns), strict=True
    )
    # Identifiers come from our own schema, never from input; values are bound.
    cursor.executemany(f"INSERT INTO {stage.name} VALUES ({placeholders})", rows)  # noqa: S608


class StageArea:
    """Staging tables for one ingest. Enter it around the ingest's transaction, not inside
    it: SQLite can attach the scratch file at any time but detach it only outside one.

    ``table(target)`` makes an empty staging copy of ``target``'s columns, ``append`` writes a
    chunk into it (on SQLite each chunk commits to the scratch file, never to the database),
    ``drop`` removes a table once merged.
    """

    def __init__(self, connection: Connection):
        self.connection = connection
        database = connection.engine.url.database
        sqlite = connection.dialect.name == "sqlite"
        self.scratch = (
            Path(f"{database}.ingest-{uuid.uuid4().hex[:12]}")
            if sqlite and database and database != ":memory:"
            else None
        )
        self.alias = f"ingest_{uuid.uuid4().hex[:12]}"
        # may ``append`` run on another thread than the one that opened the area? Not for an
        # in-memory SQLite database's connection (sqlite3 checks the thread)
        self.threadsafe = not sqlite or self.scratch is not None
        self._adbc: Any = None

    def __enter__(self) -> StageArea:
        if self.scratch is not None:
            import adbc_driver_sqlite.dbapi as sqlite_adbc

            self._adbc = sqlite_adbc.connect(str(self.scratch), autocommit=True)
            with self._adbc.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=OFF")  # scratch: lost on a crash anyway
                cursor.execute("PRAGMA synchronous=OFF")
            self._driver().execute(f"ATTACH DATABASE ? AS {self.alias}", (str(self.scratch),))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.scratch is None:
            return
        try:
            self._adbc.close()
            self._driver().execute(f"DETACH DATABASE {self.alias}")
        except Exception:
            self.connection.invalidate()  # never hand an attached connection back to the pool
            raise
        finally:
            for path in (self.scratch, Path(f"{self.scratch}-journal")):
                path.unlink(missing_ok=True)

    def table(self, target: Table) -> Table:
        """An empty, constraint-free staging table with ``target``'s data columns."""
        columns = [Column(c.name, c.type) for c in target.columns]
        name = f"stage_{target.name}"
        if self.scratch is None:
            stage = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
            stage.create(self.connection)
            return stage
        local = Table(name, MetaData(), *columns)
        with self._adbc.cursor() as cursor:
            cursor.execute(str(CreateTable(local).compile(dialect=self.connection.dialect)))
        return Table(
            name, MetaData(), *(Column(c.name, c.type) for c in target.columns), schema=self.alias
        )

    def append(self, stage: Table, frame: pl.DataFrame) -> None:
        """Write ``frame`` (columns in stage order) into ``stage``."""
        if self.scratch is None:
            append_rows(self.connection, stage, frame)
            return
        text = frame.with_columns(
            pl.col(pl.Datetime).dt.strftime(TIMESTAMP_TEXT),
            pl.col(pl.Date).dt.strftime(DATE_TEXT),
        )
        with self._adbc.cursor() as cursor:
            cursor.adbc_ingest(stage.name, text.to_arrow(), mode="append")

    def drop(self, stage: Table) -> None:
        """Remove a merged staging table (the scratch file goes as a whole)."""
        if self.scratch is None:
            stage.drop(self.connection)

    def _driver(self) -> Any:
        return self.connection.connection.driver_connection
