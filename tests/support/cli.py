"""The ``predelinq`` command as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import typer

from predelinq.cli.app import app


def command_paths() -> list[str]:
    """Every command of the CLI as its words, e.g. "features export"."""

    def names(typer_app: typer.Typer, prefix: str = "") -> list[str]:
        found = [
            prefix + (c.name or getattr(c.callback, "__name__", "").replace("_", "-"))
            for c in typer_app.registered_commands
        ]
        for group in typer_app.registered_groups:  # an unnamed group adds to this level
            assert group.typer_instance is not None
            found += names(group.typer_instance, f"{prefix}{group.name} " if group.name else prefix)
        return found

    return sorted(names(app))


def run_cli(
    *args: str,
    database_url: str | None = None,
    cwd: Path | None = None,
    columns: int | None = 200,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``predelinq *args`` (or ``*command, *args``) as cron would: output to pipes, not a
    terminal. ``columns``: the COLUMNS a user's shell exports; None leaves it unset, as cron
    does."""
    environment = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    environment.update(env or {})
    if columns is not None:
        environment["COLUMNS"] = str(columns)
    if database_url:
        environment["DATABASE_URL"] = database_url
    program = list(command) if command else [str(Path(sys.executable).with_name("predelinq"))]
    return subprocess.run(
        [*program, *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=120
    )
