"""What every command group of the CLI shares: the exit codes, the consoles, the shared
options, JSON output, opening the database, and the one table that turns an error into one
line on stderr and an exit code.

A command raises; ``MappedErrors`` (the class of the root group) catches, once for all commands.
A user's mistake is one line, never a traceback. An exception the table does not name is a
bug and shows as one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from predelinq.config import Settings, redact_url
from predelinq.errors import PredelinqError

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy import Engine


class ExitCode(IntEnum):
    """The exit status of every command (README "Exit codes")."""

    OK = 0
    INPUT_REJECTED = 1  # nothing written
    USAGE = 2  # a bad option or setting (click's own usage errors are 2 as well)
    DATABASE = 3  # the database or the model store: unreachable, unknown version, bad artifact
    RETRAIN_FAILED = 4  # also: features changed under a model, nothing to score with
    BUSY = 75  # EX_TEMPFAIL: another retrain holds the lock; try again later


# Without a terminal (cron, CI, a pipe) rich would cut and wrap at 80 columns: a version id
# became `auto_…` and the gate's verdict was split across lines. There, lines are as long as
# they need to be, unless COLUMNS says otherwise.
_WIDE = 10_000


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, soft_wrap=True, width=_WIDE if wide else None)


console = _console(stderr=False)
errors = _console(stderr=True)


def table(*columns: str, title: str) -> Table:
    """A table whose cells are never cut: a long value folds onto the next line."""
    return Table(*(Column(name, overflow="fold") for name in columns), title=title)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

DaskSchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--dask-scheduler",
        help="Features and training on this Dask scheduler (tcp://host:8786), or 'local' for a "
        "LocalCluster (default: the dask_scheduler setting; PostgreSQL only).",
    ),
]

DataAsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Date of the drift and performance figures (default: the day after the newest "
        "stored event, at most today).",
    ),
]

FileOption = Annotated[
    list[Path] | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="CSV or Parquet file."),
]

CustomersOption = Annotated[
    list[Path] | None,
    typer.Option(exists=True, dir_okay=False, help="Ids (customer_id column, or one per line)."),
]


def print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def fail(code: ExitCode, message: str) -> NoReturn:
    """One line on stderr (``message`` is rich markup), then exit with ``code``."""
    errors.print(message, highlight=False)
    raise typer.Exit(code)


class DatabaseUnavailableError(PredelinqError):
    """The configured database cannot be opened (the URL named, its password hidden)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"database {where} failed: {reason}")
        self.where, self.reason = where, reason


def open_database(settings: Settings) -> Engine:
    """The engine, its schema brought up to date; ``DatabaseUnavailableError`` (exit 3, the
    URL named without its password) when the database cannot be opened."""
    from predelinq.db import open_database as open_engine

    try:
        return open_engine(settings)
    except SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())  # one line
        where = redact_url(settings.database_url)
        raise DatabaseUnavailableError(where, reason) from error


def single_file(option: str, paths: list[Path] | None) -> Path | None:
    """The one file given for ``option``. Given twice, one of them would be silently dropped
    (click keeps the last), so a repeat is a usage error (exit 2)."""
    if not paths:
        return None
    if len(paths) > 1:
        named = ", ".join(str(path) for path in paths)
        fail(
            ExitCode.USAGE, f"{option} was given {len(paths)} times ({escape(named)}): give it once"
        )
    return paths[0]


def warn_seed_export(problem: str | None) -> None:
    """The champion moved, but the seed's copy could not be written: a warning, exit 0."""
    if problem:
        errors.print(
            f"[yellow]warning:[/yellow] the champion is in service, but {escape(problem)}; "
            "quick/quick_model.json is stale",
            highlight=False,
        )


def customer_ids_option(path: Path | None) -> pl.Series | None:
    """The ids of a ``--customers`` file (an unusable file raises ``CustomerIdsError``)."""
    if path is None:
        return None
    from predelinq.features.export import read_customer_ids

    return read_customer_ids(path)


def unknown_customer_ids(asked: pl.Series | None, found: pl.Series) -> list[str]:
    """The asked ids that got no row (not stored customers), in the order asked, listed on
    stderr."""
    if asked is None:
        return []
    unknown: list[str] = (
        asked.filter(~asked.is_in(found.implode())).unique(maintain_order=True).to_list()
    )
    if unknown:
        shown = ", ".join(unknown[:10]) + (
            f" and {len(unknown) - 10:,} more" if len(unknown) > 10 else ""
        )
        errors.print(
            f"[yellow]{len(unknown):,} unknown customer id(s) left out:[/yellow] {escape(shown)}"
        )
    return unknown


def _message(error: Any) -> list[str]:
    return [escape(str(error))]


@dataclass(frozen=True)
class ErrorExit:
    """How one kind of error ends a command: its exit code and the line that says why."""

    error: str  # "module.Class", the module that defines the class
    code: ExitCode
    label: str  # rich markup before the message; "" for none
    lines: Callable[[Any], list[str]] = _message

    def error_class(self) -> type[BaseException] | None:
        """The class, if its module is loaded. An error whose class's module was never
        loaded cannot have been raised, so matching imports nothing: a failing ``check``
        does not load XGBoost to name its error."""
        module, _, name = self.error.rpartition(".")
        found = getattr(sys.modules.get(module), name, None)
        return found if isinstance(found, type) and issubclass(found, BaseException) else None

    def render(self, error: BaseException) -> list[str]:
        first, *rest = self.lines(error)
        return [f"{self.label} {first}" if self.label else first, *rest]


def _ingest_problems(error: Any) -> list[str]:
    shown = f"({len(error.problems)} problem(s) shown)"
    problems = (escape(f"  {problem}") for problem in error.problems)
    return [f"[red]rejected, nothing was written {shown}:[/red]", *problems]


def _settings_problems(error: ValidationError) -> list[str]:
    # values are not echoed: a bad DATABASE_URL may hold a password
    found = error.errors(include_input=False, include_url=False)
    where = [".".join(str(part) for part in problem["loc"]) or "settings" for problem in found]
    lines = [f"{escape(w)}: {escape(p['msg'])}" for w, p in zip(where, found, strict=True)]
    return lines[:1] + [f"[red]configuration:[/red] {line}" for line in lines[1:]]


def _database_failure(error: Any) -> list[str]:
    return [f"[red]database {escape(error.where)} failed:[/red] {escape(error.reason)}"]


def _driver_message(error: Any) -> list[str]:
    # the driver's message only: SQLAlchemy's own text repeats the statement and its values
    reason = str(getattr(error, "orig", None) or "").strip().splitlines()
    return [escape(": ".join([error.__class__.__name__, *reason[:1]]))]


_BUSY = "[yellow]busy:[/yellow]"

# Most specific first: the first class the error is an instance of decides.
ERROR_EXITS = (
    ErrorExit(
        "predelinq.ingest.problems.IngestError", ExitCode.INPUT_REJECTED, "", _ingest_problems
    ),
    ErrorExit(
        "predelinq.features.export.NoKnownCustomerError",
        ExitCode.INPUT_REJECTED,
        "[red]nothing written:[/red]",
    ),
    ErrorExit(
        "predelinq.features.export.CustomerIdsError", ExitCode.USAGE, "[red]--customers:[/red]"
    ),
    ErrorExit(
        "predelinq.features.declarations.FeatureDeclarationError",
        ExitCode.USAGE,
        "[red]feature declaration:[/red]",
    ),
    ErrorExit(
        "predelinq.monitoring.backtest_plan.BacktestError", ExitCode.USAGE, "[red]backtest:[/red]"
    ),
    ErrorExit(
        "predelinq.api.factory.ConfigurationError", ExitCode.USAGE, "[red]configuration:[/red]"
    ),
    ErrorExit(
        "pydantic_core._pydantic_core.ValidationError",
        ExitCode.USAGE,
        "[red]configuration:[/red]",
        _settings_problems,
    ),
    ErrorExit("predelinq.scaleout.cluster.DaskModeError", ExitCode.USAGE, "[red]dask:[/red]"),
    ErrorExit(f"{__name__}.DatabaseUnavailableError", ExitCode.DATABASE, "", _database_failure),
    ErrorExit(
        "predelinq.scaleout.cluster.SchedulerUnavailableError",
        ExitCode.DATABASE,
        "[red]dask scheduler:[/red]",
    ),
    ErrorExit(
        "predelinq.modeling.artifacts.ArtifactError",
        ExitCode.DATABASE,
        "[red]model artifact:[/red]",
    ),
    ErrorExit(
        "predelinq.modeling.artifacts.ArtifactWriteError",
        ExitCode.DATABASE,
        "[red]model directory:[/red]",
    ),
    ErrorExit("predelinq.errors.RegistryError", ExitCode.DATABASE, "[red]registry:[/red]"),
    ErrorExit(
        "predelinq.db.readers.sqlite_child.SQLiteReadError",
        ExitCode.DATABASE,
        "[red]database error:[/red]",
    ),
    ErrorExit(
        "predelinq.db.engine.DatabaseLocationError", ExitCode.DATABASE, "[red]database:[/red]"
    ),
    ErrorExit(
        "sqlalchemy.exc.SQLAlchemyError",
        ExitCode.DATABASE,
        "[red]database error:[/red]",
        _driver_message,
    ),
    ErrorExit("predelinq.retraining.lock.RetrainingBusyError", ExitCode.BUSY, _BUSY),
    ErrorExit("predelinq.retraining.jobs.JobConflictError", ExitCode.BUSY, _BUSY),
    ErrorExit(
        "predelinq.features.declarations.FeatureMismatchError",
        ExitCode.RETRAIN_FAILED,
        "[red]features changed:[/red]",
    ),
    ErrorExit(
        "predelinq.serving.score.NoChampionError",
        ExitCode.RETRAIN_FAILED,
        "",
        lambda error: [f"[red]{escape(str(error))}[/red]"],
    ),
    ErrorExit(
        "predelinq.errors.TrainingError", ExitCode.RETRAIN_FAILED, "[red]training failed:[/red]"
    ),
    ErrorExit(
        "predelinq.scaleout.cluster.ClusterError", ExitCode.RETRAIN_FAILED, "[red]dask:[/red]"
    ),
)


def error_exit(error: BaseException) -> ErrorExit | None:
    """The row of ``ERROR_EXITS`` for ``error``; None for a bug (or a model other than the
    settings failing validation)."""
    if isinstance(error, ValidationError) and error.title != Settings.__name__:
        return None
    for row in ERROR_EXITS:
        cls = row.error_class()
        if cls is not None and isinstance(error, cls):
            return row
    return None


@contextmanager
def exit_codes() -> Iterator[None]:
    """Run a command; an error of the table becomes its lines on stderr and its exit code."""
    try:
        yield
    except Exception as error:
        row = error_exit(error)
        if row is None:  # a bug: the traceback helps
            raise
        for line in row.render(error):
            errors.print(line, highlight=False)
        raise typer.Exit(row.code) from error


class MappedErrors(TyperGroup):
    """A command group whose commands end through ``exit_codes``."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click: no public name)
        with exit_codes():
            return super().invoke(ctx)
