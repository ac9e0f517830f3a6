"""Monitoring benchmark: synthesise and ingest N customers (bench/features.py's data), train a
champion once, then time ``predelinq monitor`` (the report: drift of every customer as of the
data's today, realised performance on a year of matured labels, the triggers) in a fresh
child process per backend, median of ``--runs``, with its parts and the peak RSS. Run it
alone on the machine.

    python bench/monitor.py --customers 100000 --workdir /tmp/fb --json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from predelinq.config import Settings
from predelinq.db import open_database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import prepare  # noqa: E402  (bench/features.py: synthesise and ingest once)
from retrain import reset_retraining  # noqa: E402

GOAL_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train-customers", type=int, default=5000)
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) the data here.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: a database URL
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.model_dir, args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="predelinq-mbench-") as scratch:
        workdir = args.workdir or Path(scratch)
        result: dict[str, Any] = {
            "customers": args.customers,
            "threads": args.threads,
            "goal_seconds": GOAL_SECONDS,
            "backends": {},
        }
        for backend in args.backends.split(","):
            url = prepare(backend, workdir, args)
            model_dir = Path(scratch) / f"models-{backend}"
            train(url, model_dir, args)
            runs = [
                json.loads(
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--measure",
                            url,
                            "--model-dir",
                            str(model_dir),
                            "--threads",
                            str(args.threads),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
            seconds = statistics.median(run["seconds"] for run in runs)
            result["backends"][backend] = {
                "median_seconds": round(seconds, 2),
                "met": seconds <= GOAL_SECONDS,
                "runs": runs,
            }
    print(json.dumps(result, indent=None if args.json else 2))


def train(url: str, model_dir: Path, args: argparse.Namespace) -> None:
    """A first champion on ``--train-customers`` customers (the state reset before)."""
    from predelinq.retraining.run import retrain

    settings = Settings(
        database_url=url,
        model_dir=model_dir,
        threads=args.threads,
        max_customers=args.train_customers,
    )
    engine = open_database(settings)
    reset_retraining(engine)
    if not args.json:
        print(f"training a champion on {args.train_customers} customers ...", file=sys.stderr)
    assert retrain(engine, settings, reason="monitor bench", seed=args.seed).promoted
    engine.dispose()


def measure(url: str, model_dir: str, threads: int) -> dict[str, Any]:
    from predelinq.monitoring.report import monitor

    settings = Settings(database_url=url, model_dir=Path(model_dir), threads=threads)
    engine = open_database(settings)
    started = time.perf_counter()
    report = monitor(engine, settings)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "as_of": report.as_of.isoformat(),
        "population": report.drift.rows,
        "score_psi": report.drift.score_psi,
        "performance_rows": sum(period.rows for period in report.performance),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    main()
