"""The seed's entry point, installed with the package: ``python -m predelinq.check_and_retrain``
does what ``predelinq check`` does (same options, output and exit codes), for the cron lines
and scripts written against the original engine. Settings come from the environment and
``predelinq.toml`` as for the CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``predelinq check`` with ``argv`` (default: this process's arguments); exits."""
    from predelinq.cli.app import app

    app(["check", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
