"""Ingest benchmark: synthesise N customers, then time ingest into SQLite and PostgreSQL.

Prints rows/s per table (validation included), the time of each step and the peak resident
memory of each ingest (each table is ingested in a fresh process, so its peak is the ingest's
own, not the synthesiser's). Run it alone on the machine: a second load on two cores distorts
every figure.

    python bench/ingest.py --customers 100000 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
    parser.add_argument(
        "--files",
        type=Path,
        help="Ingest the four files already in this directory (from `predelinq synth`) "
        "instead of synthesising --customers of them.",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="predelinq-bench-") as workdir:
        started = time.perf_counter()
        if args.files:
            files = {name: args.files / f"{name}.{args.format}" for name in TABLES}
        else:
            files = write(
                generate(n_customers=args.customers, seed=args.seed),
                Path(workdir),
                file_format=args.format,
            )
        result: dict = {
            "customers": args.customers if not args.files else str(args.files),
            "format": args.format,
            "synth_seconds": round(time.perf_counter() - started, 2),
            "backends": {},
        }
        for backend in args.backends.split(","):
            _log(args, f"ingesting into {backend} ...")
            with _database(backend, workdir, args.postgres_url) as url:
                result["backends"][backend] = _bench_backend(url, files, args.reingest)
        result["synth_peak_rss_mb"] = _peak_rss_mb()
        result["ingest_peak_rss_mb"] = max(
            table["peak_rss_mb"]
            for backend in result["backends"].values()
            for table in backend["tables"].values()
        )
    print(json.dumps(result, indent=None if args.json else 2))


def _bench_backend(url: str, files: dict[str, Path], reingest: bool) -> dict:
    """Each table in its own call and its own process, in contract order, so each gets its
    own rate and its own peak memory."""
    spawn = multiprocessing.get_context("spawn")
    tables: dict[str, dict] = {}
    with spawn.Pool(1, maxtasksperchild=1) as pool:
        for name in TABLES:
            tables[name] = pool.apply(_ingest_one, (url, {name: files[name]}, name))
        out: dict = {"tables": tables}
        if reingest:
            again = pool.apply(_ingest_one, (url, {name: files[name] for name in TABLES}, None))
            out["reingest_seconds"] = again["seconds"]
            out["reingest_inserted"] = again["inserted"]
            out["reingest_peak_rss_mb"] = again["peak_rss_mb"]
    return out


def _ingest_one(url: str, files: dict[str, Path], name: str | None) -> dict:
    """In a fresh process: one ingest call, its rate and the process's peak RSS."""
    engine = open_database(Settings(database_url=url))
    report = ingest_files(engine, files)
    engine.dispose()
    rows = sum(counts.rows for counts in report.counts.values())
    return {
        "rows": rows,
        "seconds": round(report.seconds, 3),
        "rows_per_second": round(rows / report.seconds),
        "inserted": sum(counts.inserted for counts in report.counts.values()),
        "peak_rss_mb": _peak_rss_mb(),
        "steps": {step: round(seconds, 3) for step, seconds in report.timings.items()},
    }


def _peak_rss_mb() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over an exec, so a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


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
