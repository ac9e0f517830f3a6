"""The data commands: init (the schema), ingest (the four contract files), synth (synthetic
files) and summary (what the database holds)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from predelinq.cli.common import (
    EXIT_DATABASE_ERROR,
    EXIT_INPUT_REJECTED,
    FileOption,
    console,
    errors,
    open_database_or_exit,
    single_file,
)
from predelinq.config import Settings, redact_url

PROGRESS_MIN_UNITS = 1_000_000  # ingest progress: CSV bytes or Parquet rows

commands = typer.Typer()


@commands.command()
def init() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from predelinq.db.migrations import current_revision

    settings = Settings()
    engine = open_database_or_exit(settings)
    revision = current_revision(engine)
    console.print(f"database {redact_url(settings.database_url)} at schema revision {revision}")


@commands.command()
def ingest(
    customers: FileOption = None,
    transactions: FileOption = None,
    payments: FileOption = None,
    labels: FileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print counts per table as JSON.")
    ] = False,
) -> None:
    """Validate and load any subset of the four files in one transaction (all or nothing)."""
    from predelinq.ingest import IngestError, ingest_files

    given = (
        ("customers", customers),
        ("transactions", transactions),
        ("payments", payments),
        ("labels", labels),
    )
    paths = {
        name: path for name, files in given if (path := single_file(f"--{name}", files)) is not None
    }
    if not paths:
        errors.print(
            "nothing to ingest: give at least one of "
            "--customers, --transactions, --payments, --labels"
        )
        raise typer.Exit(2)
    engine = open_database_or_exit(Settings())
    try:
        with _ingest_progress(enabled=not as_json) as on_progress:
            report = ingest_files(engine, paths, on_progress=on_progress)
    except IngestError as error:
        errors.print(
            f"[red]rejected, nothing was written ({len(error.problems)} problem(s) shown):[/red]"
        )
        for problem in error.problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(EXIT_INPUT_REJECTED) from error
    except SQLAlchemyError as error:
        errors.print(f"[red]database error, nothing was written:[/red] {error.__class__.__name__}")
        raise typer.Exit(EXIT_DATABASE_ERROR) from error
    for warning in report.warnings:
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    table = Table("table", "rows", "inserted", "updated", "unchanged", title="ingested")
    for name, counts in report.counts.items():
        table.add_row(
            name,
            *(f"{n:,}" for n in (counts.rows, counts.inserted, counts.updated, counts.unchanged)),
        )
    console.print(table)
    console.print(f"in {report.seconds:.1f}s")


class _ingest_progress:
    """A rich progress bar per table while large files are read and staged (CSV: bytes,
    Parquet: rows); silent for small ones."""

    def __init__(self, *, enabled: bool):
        self.progress = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self.update

    def __exit__(self, *exc_info) -> None:
        self.progress.__exit__(*exc_info)

    def update(self, table: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN_UNITS:
            return
        if table not in self.tasks:
            self.tasks[table] = self.progress.add_task(table, total=total)
        self.progress.update(self.tasks[table], completed=done)


@commands.command()
def synth(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Directory for the four files.")
    ],
    seed: Annotated[int, typer.Option(min=0, help="Random seed; ids are unique across seeds.")] = 0,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of the period.")
    ] = datetime(2024, 1, 1),
    months: Annotated[int, typer.Option(min=4, help="Length of the period in months.")] = 12,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write the four contract files with synthetic data carrying a real delinquency signal."""
    from predelinq.synth import generate, write

    if file_format not in ("csv", "parquet"):
        errors.print(f"--format must be csv or parquet, not {escape(repr(file_format))}")
        raise typer.Exit(2)
    data = generate(n_customers=customers, seed=seed, start=start.date(), months=months)
    paths = write(data, out, file_format=file_format)
    for name, path in paths.items():
        console.print(f"{name:<13} {getattr(data, name).height:>12,} rows  {escape(str(path))}")


@commands.command()
def summary(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Row counts, date ranges and the label positive rate of the database."""
    from predelinq.db.summary import database_summary

    result = database_summary(open_database_or_exit(Settings()))
    if as_json:
        print(json.dumps(result))
        return
    table = Table("table", "rows", "from", "to", "positive rate", title="predelinq database")
    for name, row in result.items():
        rate = row.get("positive_rate")
        table.add_row(
            name,
            f"{row['rows']:,}",
            row["first"] or "-",
            row["last"] or "-",
            "-" if rate is None else f"{rate:.2%}",
        )
    console.print(table)
