"""Validated bulk ingest of customers, transactions, payments and labels.

``ingest_files`` reads, checks and stages every file a chunk at a time into temporary tables,
and merges them into the stored tables only when no file has a problem, all in one database
transaction: memory stays bounded whatever the file size, and a bad row anywhere writes
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, Table

from predelinq.db import schema
from predelinq.db.bulk import ProgressCallback, StageArea
from predelinq.ingest.contract import TABLE_SPECS
from predelinq.ingest.load import (
    TableCounts,
    check_customers_known,
    lock_for_ingest,
    merge,
)
from predelinq.ingest.problems import IngestError, Problem
from predelinq.ingest.validate import FileCheck

__all__ = ["IngestError", "IngestReport", "Problem", "TableCounts", "ingest_files"]


@dataclass
class IngestReport:
    counts: dict[str, TableCounts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # seconds per step: "validate.transactions" (read and check), "stage_wait.transactions"
    # (waiting for staging writes not hidden behind the checks), "merge.transactions"
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON data (``predelinq ingest --json``)."""
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
    on_step: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Validate and load any subset of the four files, all or nothing.

    Args:
        paths: table name (customers, transactions, payments, labels) -> file path.
        on_progress: called with (table, done, total) while staging: bytes read of a CSV,
            rows read of a Parquet file.
        on_step: called with the name of each later step (``check customers``,
            ``check <table>``, ``merge <table>``) as it starts.
        now: "first seen" time for customers whose file gives no ``created_at``.

    Raises:
        IngestError: a file broke the contract; the database is unchanged.
    """
    started = time.perf_counter()
    unknown_tables = sorted(set(paths) - set(TABLE_SPECS))
    if unknown_tables:
        raise ValueError(f"unknown tables: {', '.join(unknown_tables)}")
    report = IngestReport()
    step = on_step or (lambda name: None)
    with engine.connect() as connection, StageArea(connection) as area, connection.begin():
        lock_for_ingest(connection)
        staged = _stage_all(area, paths, now, on_progress, step, report.timings)
        for file, _ in staged:
            if file.ignored_columns:
                names = ", ".join(file.ignored_columns)
                report.warnings.append(f"{file.path}: ignored extra columns: {names}")
        for file, stage in staged:
            if file.spec.name == "customers":
                step("merge customers")
                report.counts["customers"] = _merge(area, file, stage, report.timings)
        step("check customers")
        with _timed(report.timings, "check_customers"):
            check_customers_known(connection, [file for file, _ in staged])
        for file, stage in staged:
            if file.spec.name != "customers":
                step(f"merge {file.spec.name}")
                report.counts[file.spec.name] = _merge(area, file, stage, report.timings)
    report.seconds = time.perf_counter() - started
    return report


def _stage_all(
    area: StageArea,
    paths: dict[str, Path],
    now: datetime | None,
    on_progress: ProgressCallback | None,
    step: Callable[[str], None],
    timings: dict[str, float],
) -> list[tuple[FileCheck, Table]]:
    """Read, check and stage every file a chunk at a time, into staging tables only.

    One thread writes a chunk while this one reads and checks the next (at most two chunks
    in memory). The problems of all files are reported together; after the first one
    nothing more is staged, and the caller's transaction is rolled back.
    """
    staged: list[tuple[FileCheck, Table]] = []
    problems: list[Problem] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-stage") as writer:
        for name, spec in TABLE_SPECS.items():
            if name not in paths:
                continue
            file = FileCheck(spec, Path(paths[name]), now=now)
            stage = area.table(schema.metadata.tables[name])
            validate, write = f"validate.{name}", f"stage_wait.{name}"
            timings[validate] = timings[write] = 0.0
            pending: Future[None] | None = None
            try:
                chunks = file.chunks()
                while True:
                    with _timed(timings, validate, add=True):
                        chunk = next(chunks, None)
                    if chunk is None:
                        break
                    if problems:
                        continue
                    with _timed(timings, write, add=True):
                        if pending is not None:
                            pending.result()
                        if area.threadsafe:
                            pending = writer.submit(area.append, stage, chunk)
                        else:
                            area.append(stage, chunk)
                    if on_progress:
                        on_progress(name, *file.progress)
                step(f"check {name}")
                with _timed(timings, validate, add=True):
                    problems += file.finish()
            except IngestError as error:
                problems += error.problems
            finally:
                with _timed(timings, write, add=True):
                    if pending is not None:
                        pending.result()  # the connection is this thread's again
            staged.append((file, stage))
    if problems:
        raise IngestError(problems)
    return staged


def _merge(
    area: StageArea, file: FileCheck, stage: Table, timings: dict[str, float]
) -> TableCounts:
    with _timed(timings, f"merge.{file.spec.name}"):
        inserted, updated = merge(area.connection, file.spec, stage)
        area.drop(stage)
    return TableCounts(rows=file.rows, inserted=inserted, updated=updated)


@contextmanager
def _timed(timings: dict[str, float], step: str, *, add: bool = False) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = (timings.get(step, 0.0) if add else 0.0) + time.perf_counter() - started
