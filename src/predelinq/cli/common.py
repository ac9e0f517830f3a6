"""What every command group of the CLI shares: the consoles, the shared options, JSON output,
opening the database, and turning library errors into one line and an exit code.

Exit codes: 0 success; 1 input rejected (nothing written); 2 usage error;
3 database unreachable or failing; 4 a failed retrain; 75 another retrain is running.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from predelinq.config import Settings, redact_url

if TYPE_CHECKING:
    import polars as pl

EXIT_INPUT_REJECTED = 1
EXIT_DATABASE_ERROR = 3
EXIT_FEATURES_MISMATCH = 4  # as a failed retrain: the model cannot be used as it is
EXIT_RETRAIN_FAILED = 4
EXIT_BUSY = 75  # EX_TEMPFAIL: another retrain holds the lock; try again later

console = Console()
errors = Console(stderr=True, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

FileOption = Annotated[
    list[Path] | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="CSV or Parquet file."),
]


def print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def open_database_or_exit(settings: Settings):
    from predelinq.db import open_database

    try:
        return open_database(settings)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip()
        where = redact_url(settings.database_url)
        errors.print(f"[red]database {where} failed:[/red] {escape(reason)}", highlight=False)
        raise typer.Exit(EXIT_DATABASE_ERROR) from error


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


@contextmanager
def registry_errors() -> Iterator[None]:
    """An unknown version, an artifact that is missing or fails verification, or a model
    directory that cannot be written: one line, exit 3."""
    from predelinq.modeling.registry import ArtifactError, ArtifactWriteError, RegistryError

    try:
        yield
    except RegistryError as error:
        label = {ArtifactError: "model artifact", ArtifactWriteError: "model directory"}
        errors.print(
            f"[red]{label.get(type(error), 'registry')}:[/red] {escape(str(error))}",
            highlight=False,
        )
        raise typer.Exit(EXIT_DATABASE_ERROR) from error


def run_or_exit(function, *args, **kwargs):
    """Run a retrain, turning the lock, registry and feature errors into exit codes."""
    from predelinq.retraining.lock import RetrainingBusyError

    try:
        with feature_errors(), registry_errors():
            return function(*args, **kwargs)
    except RetrainingBusyError as error:
        errors.print(f"[yellow]busy:[/yellow] {escape(str(error))}")
        raise typer.Exit(EXIT_BUSY) from error


def warn_seed_export(problem: str | None) -> None:
    """The champion moved, but the seed's copy could not be written: a warning, exit 0."""
    if problem:
        errors.print(
            f"[yellow]warning:[/yellow] the champion is in service, but {escape(problem)}; "
            "quick/quick_model.json is stale",
            highlight=False,
        )


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
