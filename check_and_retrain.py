"""The seed's entry point: ``python check_and_retrain.py`` does what ``predelinq check`` does.

Kept at the repository root for the cron lines and scripts written against the original
engine. Settings come from the environment and ``predelinq.toml`` as for the CLI.
"""

import sys

from predelinq.cli.app import app

if __name__ == "__main__":
    sys.exit(app(["check", *sys.argv[1:]]))
