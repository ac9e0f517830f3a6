"""The data commands: init (the schema), ingest (the four contract files), synth (synthetic
files) and summary (what the database holds)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from predelinq.cli.common import (
    ExitCode,
    FileOption,
    JsonOption,
    console,
    errors,
    fail,
    open_database,
    print_json,
    single_file,
    table,
)
from predelinq.cli.progress import IngestProgress
from predelinq.config import Settings, redact_url

commands = typer.Typer()


@commands.command()
def init() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from predelinq.db.migrations import current_revision

    settings = Settings()
    engine = open_database(settings)
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
    from predelinq.ingest import ingest_files

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
        fail(
            ExitCode.USAGE,
            "nothing to ingest: give at least one of "
            "--customers, --transactions, --payments, --labels",
        )
    engine = open_database(Settings())
    with IngestProgress(enabled=not as_json) as progress:
        report = ingest_files(engine, paths, on_progress=progress.update, on_step=progress.step)
    for warning in report.warnings:
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if as_json:
        print_json(report.as_dict())
        return
    shown = table("table", "rows", "inserted", "updated", "unchanged", title="ingested")
    for name, counts in report.counts.items():
        shown.add_row(
            name,
            *(f"{n:,}" for n in (counts.rows, counts.inserted, counts.updated, counts.unchanged)),
        )
    console.print(shown)
    console.print(f"in {report.seconds:.1f}s")


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
    shift_from: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="A regime change (an economic shock) from the month of this day in the period.",
        ),
    ] = None,
) -> None:
    """Write the four contract files with synthetic data carrying a real delinquency signal."""
    from predelinq.synth import generate, shift_month, write

    if file_format not in ("csv", "parquet"):
        fail(ExitCode.USAGE, f"--format must be csv or parquet, not {escape(repr(file_format))}")
    shift = None if shift_from is None else shift_from.date()
    if shift is not None:
        try:
            shift_month(start.date(), months, shift)
        except ValueError as error:
            fail(ExitCode.USAGE, f"--shift-from: {escape(str(error))} (--start, --months)")
    data = generate(
        n_customers=customers, seed=seed, start=start.date(), months=months, shift_from=shift
    )
    paths = write(data, out, file_format=file_format)
    for name, path in paths.items():
        console.print(f"{name:<13} {getattr(data, name).height:>12,} rows  {escape(str(path))}")


@commands.command()
def summary(as_json: JsonOption = False) -> None:
    """Row counts, date ranges and the label positive rate of the database."""
    from predelinq.db.summary import database_summary

    result = database_summary(open_database(Settings()))
    if as_json:
        print_json(result)
        return
    shown = table("table", "rows", "from", "to", "positive rate", title="predelinq database")
    for name, row in result.items():
        rate = row.get("positive_rate")
        shown.add_row(
            name,
            f"{row['rows']:,}",
            row["first"] or "-",
            row["last"] or "-",
            "-" if rate is None else f"{rate:.2%}",
        )
    console.print(shown)
