"""The ``predelinq`` command line: one Typer app over the same library functions as the API.

This module only assembles the app: the root options and one module per command group
(``data``, ``retraining``, ``models``, ``serve``, ``features``), in the order of ``--help``.
Only entry points import it. Exit codes are in ``cli/common.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from predelinq import __version__
from predelinq.cli import data, features, models, retraining, serve
from predelinq.cli.common import console, errors
from predelinq.config import Settings

app = typer.Typer(
    help="predelinq: pre-delinquency risk engine with automatic, safe model retraining.",
    no_args_is_help=True,
    add_completion=False,
)
# Unnamed groups add their commands to the top level, in this order.
for group in (data.commands, retraining.commands, models.commands, serve.commands):
    app.add_typer(group)
app.add_typer(features.features_app, name="features")


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
