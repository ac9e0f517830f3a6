"""The ``predelinq`` command as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from predelinq.cli.app import app


def command_paths() -> list[str]:
    """Every command of the CLI as its words, e.g. "features export"."""

    def names(typer_app, prefix: str = "") -> list[str]:
        found = [
            prefix + (c.name or c.callback.__name__.replace("_", "-"))
            for c in typer_app.registered_commands
        ]
        for group in typer_app.registered_groups:  # an unnamed group adds to this level
            found += names(group.typer_instance, f"{prefix}{group.name} " if group.name else prefix)
        return found

    return sorted(names(app))


def run_cli(
    *args: str, database_url: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    if database_url:
        env["DATABASE_URL"] = database_url
    executable = Path(sys.executable).with_name("predelinq")
    return subprocess.run(
        [str(executable), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
