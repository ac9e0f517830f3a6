"""Feature benchmark: synthesise and ingest N customers, then time ``compute_features`` for
every labelled observation, database read included, on SQLite and on PostgreSQL.

Each measurement runs in a fresh child process so its peak RSS is the feature computation's
own. Run it alone on the machine.

    python bench/features.py --customers 100000 --json
    python bench/features.py --customers 100000 --workdir /tmp/fb   # keep data between runs
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import psycopg
from sqlalchemy import func, select

from predelinq.config import Settings
from predelinq.db import open_database, schema

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) the data here.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: a database URL
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="predelinq-fbench-") as scratch:
        workdir = args.workdir or Path(scratch)
        result = {"customers": args.customers, "threads": args.threads, "backends": {}}
        for backend in args.backends.split(","):
            url = prepare(backend, workdir, args)
            child = subprocess.run(
                [sys.executable, __file__, "--measure", url, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            result["backends"][backend] = json.loads(child.stdout)
    print(json.dumps(result, indent=None if args.json else 2))


# Above this many customers the data is synthesised and ingested in batches of it, with seeds
# seed, seed + 1, ... (customer ids differ across seeds): one million customers at once would
# not fit in memory while being generated.
BATCH_CUSTOMERS = 100_000


def prepare(backend: str, workdir: Path, args: argparse.Namespace) -> str:
    """Synthesise and ingest once per workdir and backend; later runs reuse the database."""
    from predelinq.ingest import ingest_files
    from predelinq.synth import generate, write

    schema_name = f"fbench_{args.customers}_{args.seed}"
    url = (
        f"sqlite:///{workdir}/{schema_name}.db"
        if backend == "sqlite"
        else f"{POSTGRES_URL}?options=-csearch_path%3D{schema_name}"
    )
    marker = workdir / f"{schema_name}.{backend}.ready"
    if marker.exists():
        return url
    if backend == "postgres":
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE")
            connection.execute(f"CREATE SCHEMA {schema_name}")
    engine = open_database(Settings(database_url=url))
    names = ("customers", "transactions", "payments", "labels")
    for batch, customers in enumerate(batch_sizes(args.customers)):
        seed = args.seed + batch
        files_dir = workdir / f"files_{customers}_{seed}"
        if not (files_dir / "labels.parquet").exists():
            data = generate(n_customers=customers, seed=seed)
            write(data, files_dir, file_format="parquet")
            del data
        if not args.json:
            print(f"ingesting {customers} customers into {backend} ...", file=sys.stderr)
        ingest_files(engine, {name: files_dir / f"{name}.parquet" for name in names})
    engine.dispose()
    marker.touch()
    return url


def batch_sizes(customers: int) -> list[int]:
    full, rest = divmod(customers, BATCH_CUSTOMERS)
    return [BATCH_CUSTOMERS] * full + ([rest] if rest else []) if full else [customers]


def measure(url: str, threads: int) -> dict:
    from predelinq.features import compute_features

    settings = Settings(database_url=url, threads=threads)
    engine = open_database(settings)
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.labels.c.customer_id, schema.labels.c.observation_date)
        ).all()
    observations = pl.DataFrame(rows, schema=["customer_id", "observation_date"], orient="row")
    labels_seconds = time.perf_counter() - started
    timings: dict[str, float] = {}
    started = time.perf_counter()
    features = compute_features(engine, observations, settings=settings, timings=timings)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        count = select(func.count()).select_from(schema.transactions)
        transactions = connection.execute(count).scalar_one()
    return {
        "observations": features.height,
        "features": features.width - 2,
        "seconds": round(seconds, 2),
        "observations_per_second": round(features.height / seconds),
        "stages": {stage: round(value, 2) for stage, value in timings.items()},
        "labels_read_seconds": round(labels_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "transactions": transactions,
    }


if __name__ == "__main__":
    main()
