"""Validated bulk ingest of customers, transactions, payments and labels.

``ingest_files`` validates every file first (nothing touches the database while any file
has a problem), then loads them all in one database transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from predelinq.db import schema
from predelinq.db.bulk import ProgressCallback, stage_rows
from predelinq.ingest.contract import TABLE_SPECS
from predelinq.ingest.load import (
    TableCounts,
    check_customers_known,
    lock_for_ingest,
    merge,
    stage_table,
)
from predelinq.ingest.validate import IngestError, Problem, ValidFile, validate_file

__all__ = ["IngestError", "IngestReport", "Problem", "TableCounts", "ingest_files"]


@dataclass
class IngestReport:
    counts: dict[str, TableCounts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # seconds per step, e.g. "validate.transactions", "stage.transactions", "merge.transactions"
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "tables": {
                name: {**vars(counts), "unchanged": counts.unchanged}
                for name, counts in self.counts.items()
            },
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "timings": {step: round(seconds, 3) for step, seconds in self.timings.items()},
        }


def ingest_files(
    engine: Engine,
    paths: dict[str, Path],
    *,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Validate and load any subset of the four files, all or nothing.

    Args:
        paths: table name (customers, transactions, payments, labels) -> file path.
        on_progress: called with (table, rows written, rows total) while staging.
        now: "first seen" time for customers whose file gives no ``created_at``.

    Raises:
        IngestError: a file broke the contract; the database is unchanged.
    """
    started = time.perf_counter()
    unknown_tables = sorted(set(paths) - set(TABLE_SPECS))
    if unknown_tables:
        raise ValueError(f"unknown tables: {', '.join(unknown_tables)}")
    report = IngestReport()
    files = _validate_all(paths, now, report.timings)
    for file in files:
        if file.ignored_columns:
            names = ", ".join(file.ignored_columns)
            report.warnings.append(f"{file.path}: ignored extra columns: {names}")
    with engine.begin() as connection:
        lock_for_ingest(connection)
        for file in files:
            if file.spec.name == "customers":
                report.counts["customers"] = _load(connection, file, on_progress, report.timings)
        with _timed(report.timings, "check_customers"):
            check_customers_known(connection, files)
        for file in files:
            if file.spec.name != "customers":
                report.counts[file.spec.name] = _load(connection, file, on_progress, report.timings)
    report.seconds = time.perf_counter() - started
    return report


def _validate_all(
    paths: dict[str, Path], now: datetime | None, timings: dict[str, float]
) -> list[ValidFile]:
    """Validate every file, reporting the problems of all of them together."""
    files: list[ValidFile] = []
    problems: list[Problem] = []
    for name, spec in TABLE_SPECS.items():
        if name not in paths:
            continue
        try:
            with _timed(timings, f"validate.{name}"):
                files.append(validate_file(spec, Path(paths[name]), now=now))
        except IngestError as error:
            problems += error.problems
    if problems:
        raise IngestError(problems)
    return files


def _load(
    connection: Connection,
    file: ValidFile,
    on_progress: ProgressCallback | None,
    timings: dict[str, float],
) -> TableCounts:
    name = file.spec.name
    stage = stage_table(schema.metadata.tables[name])
    with _timed(timings, f"stage.{name}"):
        stage_rows(connection, stage, file.frame, on_progress)
    with _timed(timings, f"merge.{name}"):
        inserted, updated = merge(connection, file.spec, stage)
        stage.drop(connection)
    return TableCounts(rows=file.frame.height, inserted=inserted, updated=updated)


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = time.perf_counter() - started
