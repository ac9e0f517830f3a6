"""Ingest benchmark: synthesise N customers, then time ingest into SQLite and PostgreSQL.

Prints rows/s per table (validation included) and the time of each step. Run it alone on the
machine: a second load on two cores distorts every figure.

    python bench/ingest.py --customers 100000 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.ingest import ingest_files
from predelinq.synth import generate, write

TABLES = ("customers", "transactions", "payments", "labels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--reingest", action="store_true", help="Also time a second, no-op ingest.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="predelinq-bench-") as workdir:
        started = time.perf_counter()
        files = write(
            generate(n_customers=args.customers, seed=args.seed),
            Path(workdir),
            file_format=args.format,
        )
        result: dict = {
            "customers": args.customers,
            "format": args.format,
            "synth_seconds": round(time.perf_counter() - started, 2),
            "backends": {},
        }
        for backend in args.backends.split(","):
            _log(args, f"ingesting into {backend} ...")
            with _database(backend, workdir, args.postgres_url) as url:
                result["backends"][backend] = _bench_backend(url, files, args.reingest)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, indent=None if args.json else 2))


def _bench_backend(url: str, files: dict[str, Path], reingest: bool) -> dict:
    """Each table in its own call, in contract order, so each gets its own rate."""
    engine = open_database(Settings(database_url=url))
    tables: dict[str, dict] = {}
    for name in TABLES:
        report = ingest_files(engine, {name: files[name]})
        rows = report.counts[name].rows
        tables[name] = {
            "rows": rows,
            "seconds": round(report.seconds, 3),
            "rows_per_second": round(rows / report.seconds),
            "steps": report.timings,
        }
    out = {"tables": tables}
    if reingest:
        report = ingest_files(engine, {name: files[name] for name in TABLES})
        out["reingest_seconds"] = round(report.seconds, 2)
        out["reingest_inserted"] = sum(c.inserted for c in report.counts.values())
    engine.dispose()
    return out


class _database:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""

    def __init__(self, backend: str, workdir: str, postgres_url: str):
        self.backend, self.workdir, self.postgres_url = backend, workdir, postgres_url
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir}/bench.db"
        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {self.schema}")
        return f"{self.postgres_url}?options=-csearch_path%3D{self.schema}"

    def __exit__(self, *exc_info) -> None:
        if self.backend == "postgres":
            with psycopg.connect(self.postgres_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {self.schema} CASCADE")


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr)


if __name__ == "__main__":
    main()
