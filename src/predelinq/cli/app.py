"""The ``predelinq`` command line: one Typer app over the same library functions as the API.

This module only assembles the app: the root options and one module per command group
(``data``, ``retraining``, ``models``, ``monitoring``, ``serve``, ``features``), in the order
of ``--help``. Only entry points import it. Every command ends through the one error table of
``cli/common.py`` (``MappedErrors``): an error is one line and an exit code, never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from predelinq import __version__
from predelinq.cli import data, features, models, monitoring, retraining, serve
from predelinq.cli.common import MappedErrors, console

app = typer.Typer(
    cls=MappedErrors,
    help="predelinq: pre-delinquency risk engine with automatic, safe model retraining.",
    no_args_is_help=True,
    add_completion=False,
)
# Unnamed groups add their commands to the top level, in this order.
for group in (
    data.commands,
    retraining.commands,
    models.commands,
    monitoring.commands,
    serve.commands,
):
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
    """The ``predelinq`` console script."""
    app()
