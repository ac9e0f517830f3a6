"""The ``predelinq`` command line: one Typer app over the same library functions as the API.

Exit codes: 0 success; 1 input rejected (nothing written); 2 usage error;
3 database unreachable or failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
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

from predelinq import __version__
from predelinq.config import Settings, redact_url

if TYPE_CHECKING:
    import polars as pl

EXIT_INPUT_REJECTED = 1
EXIT_DATABASE_ERROR = 3
PROGRESS_MIN_UNITS = 1_000_000  # ingest progress: CSV bytes or Parquet rows

app = typer.Typer(
    help="predelinq: pre-delinquency risk engine with automatic, safe model retraining.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"predelinq {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Pre-delinquency risk engine: ingest data, train, gate, register and serve models."""


def _open_database(settings: Settings):
    from predelinq.db import open_database

    try:
        return open_database(settings)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip()
        where = redact_url(settings.database_url)
        errors.print(f"[red]database {where} failed:[/red] {escape(reason)}", highlight=False)
        raise typer.Exit(EXIT_DATABASE_ERROR) from error


@app.command()
def init() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from predelinq.db.migrations import current_revision

    settings = Settings()
    engine = _open_database(settings)
    revision = current_revision(engine)
    console.print(f"database {redact_url(settings.database_url)} at schema revision {revision}")


FileOption = Annotated[
    list[Path] | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="CSV or Parquet file."),
]


def single_file(option: str, paths: list[Path] | None) -> Path | None:
    """The one file given for ``option``. Given twice, one of them would be silently dropped
    (click keeps the last), so a repeat is a usage error (exit 2)."""
    if not paths:
        return None
    if len(paths) > 1:
        named = ", ".join(str(path) for path in paths)
        errors.print(f"{option} was given {len(paths)} times ({escape(named)}): give it once")
        raise typer.Exit(2)
    return paths[0]


@app.command()
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
    engine = _open_database(Settings())
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


@app.command()
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


@app.command()
def summary(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Row counts, date ranges and the label positive rate of the database."""
    from predelinq.db.summary import database_summary

    result = database_summary(_open_database(Settings()))
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


features_app = typer.Typer(
    help="Point-in-time features: the registry and exports.", no_args_is_help=True
)
app.add_typer(features_app, name="features")


EXIT_FEATURES_MISMATCH = 4  # as a failed retrain: the model cannot be used as it is


@contextmanager
def feature_errors() -> Iterator[None]:
    """A bad ``[[features]]`` entry (exit 2), a model whose features changed (exit 4), or
    ``--customers`` none of which is stored (exit 1) as one line, not a traceback."""
    from predelinq.features import FeatureDeclarationError, FeatureMismatchError
    from predelinq.features.export import NoKnownCustomerError

    try:
        yield
    except NoKnownCustomerError as error:
        errors.print(f"[red]nothing written:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_INPUT_REJECTED) from error
    except FeatureDeclarationError as error:
        errors.print(f"[red]feature declaration:[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    except FeatureMismatchError as error:
        errors.print(f"[red]features changed:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_FEATURES_MISMATCH) from error


def customer_ids_option(path: Path | None) -> pl.Series | None:
    """The ids of a ``--customers`` file, or exit 2 with one line saying what is wrong."""
    if path is None:
        return None
    from predelinq.features.export import CustomerIdsError, read_customer_ids

    try:
        return read_customer_ids(path)
    except CustomerIdsError as error:
        errors.print(f"[red]--customers:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None


def unknown_customer_ids(asked: pl.Series | None, found: pl.Series) -> list[str]:
    """The asked ids that got no row (not stored customers), listed on stderr."""
    if asked is None:
        return []
    unknown = asked.filter(~asked.is_in(found.implode())).unique(maintain_order=True).to_list()
    if unknown:
        shown = ", ".join(unknown[:10]) + (
            f" and {len(unknown) - 10:,} more" if len(unknown) > 10 else ""
        )
        errors.print(
            f"[yellow]{len(unknown):,} unknown customer id(s) left out:[/yellow] {escape(shown)}"
        )
    return unknown


@features_app.command("list")
def features_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every declared feature (built-in, then yours) with its family, origin and definition."""
    from predelinq.features import configured_features
    from predelinq.features.docs import describe

    with feature_errors():
        rows = [describe(feature) for feature in configured_features(Settings()).features]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("name", "family", "origin", "definition", title=f"{len(rows)} features")
    for row in rows:
        table.add_row(row["name"], row["family"], escape(row["origin"]), escape(row["definition"]))
    console.print(table)


@features_app.command("export")
def features_export(
    as_of: Annotated[
        datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Observation date.")
    ],
    output: Annotated[
        Path, typer.Option("--output", dir_okay=False, help="A .csv or .parquet file.")
    ],
    customers: Annotated[
        list[Path] | None,
        typer.Option(
            exists=True, dir_okay=False, help="Ids to export (customer_id column, or one per line)."
        ),
    ] = None,
) -> None:
    """Write one row of features per customer as of a date (events before that date only)."""
    from predelinq.features.export import export_features

    ids_file = single_file("--customers", customers)

    if output.suffix.lower() not in (".csv", ".parquet"):
        errors.print(f"--output must end in .csv or .parquet, not {escape(repr(output.name))}")
        raise typer.Exit(2)
    settings = Settings()
    ids = customer_ids_option(ids_file)
    engine = _open_database(settings)
    try:
        with feature_errors():
            features = export_features(
                engine, as_of=as_of.date(), output_path=output, customer_ids=ids, settings=settings
            )
    finally:
        engine.dispose()
    unknown_customer_ids(ids, features["customer_id"])
    count = f"{features.height:,} customers x {features.width - 2} features"
    console.print(f"{count} as of {as_of.date()} -> {output}")


# Registers check, retrain, status, history, models, promote, rollback, score on ``app``.
from predelinq.cli import retraining  # noqa: E402, F401


def run() -> None:
    """The `predelinq` command: the app, with a settings error (predelinq.toml or the
    environment) as one line per problem and exit 2, never a traceback. Values are not
    echoed: a bad DATABASE_URL may hold a password."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        for problem in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            errors.print(f"[red]configuration:[/red] {escape(where)}: {escape(problem['msg'])}")
        raise SystemExit(2) from None
