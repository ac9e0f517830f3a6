"""Retraining benchmark: synthesise and ingest N customers, then time a first retrain
(``predelinq.retraining.run.retrain``) end to end on SQLite and on PostgreSQL, next to a bare
``xgboost.train`` on the same matrix.

Each backend is measured in a fresh child process so its peak RSS is the retrain's own. The
retraining state (training status, log, champion, versions) is reset before each run, so
every run is a first retrain, and the model directory is a fresh temporary one. With
``--check-command`` (default when N <= 1000) the whole ``predelinq check --json`` command,
interpreter start included, is also timed (median of 3, state reset before each). Run it
alone on the machine.

With ``--dask``, the PostgreSQL retrain is measured a second time, in another child, in Dask
mode (``backends.postgres_dask``): the child starts a ``LocalCluster`` of ``--dask-workers``
worker processes of ``--dask-threads`` threads each, and runs the same retrain (same
selection seed and ``--max-customers``) with ``dask_scheduler`` set to its address. It reports
the client's peak RSS (the scheduler runs in it) and each worker's; ``dask.ratio`` is the Dask
retrain's wall time over the local one's (the cluster's start is timed apart).

    python bench/retrain.py --customers 200 --workdir /tmp/rb
    python bench/retrain.py --customers 100000 --max-customers all --workdir /tmp/fb --json
    python bench/retrain.py --customers 3000 --backends postgres --max-customers all \
        --workdir /tmp/fb --dask --dask-workers 2 --dask-threads 1 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, delete, select

from predelinq.cli.common import ExitCode
from predelinq.config import Settings, parse_max_customers
from predelinq.db import open_database, schema

if TYPE_CHECKING:
    from predelinq.retraining.result import RetrainResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import prepare  # noqa: E402  (bench/features.py: synthesise and ingest once)

RETRAINING_TABLES = schema.RETRAINING_TABLES  # deleted in this order: a first retrain again
CHECK_RUNS = 3
BUSY_RETRIES = 120  # PostgreSQL's advisory lock is database-wide: other schemas' retrains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-customers", type=parse_max_customers, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) the data here.")
    parser.add_argument(
        "--check-command",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Also time `predelinq check --json` (default: on when --customers <= 1000).",
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="PostgreSQL only: also time the same retrain on a local Dask cluster.",
    )
    parser.add_argument("--dask-workers", type=int, default=2, help="Dask worker processes.")
    parser.add_argument("--dask-threads", type=int, default=1, help="Threads per Dask worker.")
    parser.add_argument(
        "--skip-local",
        action="store_true",
        help="With --dask, time only the Dask run on PostgreSQL: for data one process cannot "
        "hold (the selection seed is then --seed).",
    )
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: a database URL
    parser.add_argument("--retrain-seed", type=int, help=argparse.SUPPRESS)  # Dask child
    args = parser.parse_args()
    if args.measure and args.dask:
        cluster_shape = (args.dask_workers, args.dask_threads)
        measured = measure_dask(
            args.measure, args.threads, args.max_customers, args.retrain_seed, cluster_shape
        )
        print(json.dumps(measured))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, args.max_customers)))
        return
    check_command = args.customers <= 1000 if args.check_command is None else args.check_command
    with tempfile.TemporaryDirectory(prefix="predelinq-rbench-") as scratch:
        workdir = args.workdir or Path(scratch)
        result: dict[str, Any] = {
            "customers": args.customers,
            "max_customers": args.max_customers,
            "threads": args.threads,
            # Unset, OpenMP threads spin while waiting: with other busy processes on the cores,
            # xgboost's rounds slow down by an order of magnitude (check the load averages).
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "backends": {},
        }
        if args.dask:
            result["dask"] = {
                "workers": args.dask_workers,
                "threads_per_worker": args.dask_threads,
            }
            if "postgres" not in args.backends.split(","):
                print("--dask: only with the postgres backend; not measured", file=sys.stderr)
        for backend in args.backends.split(","):
            url = prepare(backend, workdir, args)
            if not args.json:
                print(f"retraining on {backend} ...", file=sys.stderr)
            dask_here = args.dask and backend == "postgres"
            measured: dict[str, Any] = {"selection_seed": args.seed}
            if not (dask_here and args.skip_local):
                command = [sys.executable, __file__, "--measure", url, "--threads"]
                command += [str(args.threads), "--max-customers", str(args.max_customers)]
                load_before = os.getloadavg()[0]
                measured = json.loads(run(command).stdout)
                measured["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                if check_command:
                    measured.update(time_check_command(url, args.threads, args.max_customers))
                result["backends"][backend] = measured
            if dask_here:
                if not args.json:
                    print(f"retraining on {backend} in Dask mode ...", file=sys.stderr)
                command = [sys.executable, __file__, "--measure", url, "--dask"]
                command += ["--threads", str(args.threads)]
                command += ["--max-customers", str(args.max_customers)]
                command += ["--dask-workers", str(args.dask_workers)]
                command += ["--dask-threads", str(args.dask_threads)]
                command += ["--retrain-seed", str(measured["selection_seed"])]
                load_before = os.getloadavg()[0]
                on_dask = json.loads(run(command).stdout)
                on_dask["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                result["backends"]["postgres_dask"] = on_dask
                if "retrain_call_seconds" in measured:
                    # Both walls are the retrain call alone (the cluster's start is not in it).
                    result["dask"]["ratio"] = round(
                        on_dask["retrain_call_seconds"] / measured["retrain_call_seconds"], 2
                    )
    print(json.dumps(result, indent=None if args.json else 2))


def run(
    command: list[str], *, allow: tuple[int, ...] = (), **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on failure (other than an ``allow``-ed status), stop with its stderr."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode not in (0, *allow):
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done


def reset_retraining(engine: Engine) -> None:
    """Forget every retrain, so the next one is a first retrain (all customers are new)."""
    with engine.begin() as connection:
        for table in RETRAINING_TABLES:
            connection.execute(delete(table))


def time_check_command(url: str, threads: int, max_customers: int | str) -> dict[str, Any]:
    """Wall time of the whole ``predelinq check --json`` command, interpreter start included."""
    engine = open_database(Settings(database_url=url))
    executable = str(Path(sys.executable).with_name("predelinq"))
    seconds, outputs, busy = [], [], 0
    while len(seconds) < CHECK_RUNS:
        reset_retraining(engine)
        with tempfile.TemporaryDirectory(prefix="predelinq-rbench-check-") as model_dir:
            env = os.environ | {
                "DATABASE_URL": url,
                "PREDELINQ_MODEL_DIR": model_dir,
                "PREDELINQ_THREADS": str(threads),
                "PREDELINQ_MAX_CUSTOMERS": str(max_customers),
            }
            started = time.perf_counter()
            # cwd: the empty model dir, so no ./predelinq.toml is picked up.
            done = run(
                [executable, "check", "--json"], allow=(ExitCode.BUSY,), env=env, cwd=model_dir
            )
            elapsed = time.perf_counter() - started
        if done.returncode == ExitCode.BUSY:  # another retrain holds the lock: not a measurement
            busy += 1
            if busy > BUSY_RETRIES:
                sys.exit(f"check: the retraining lock stayed busy:\n{done.stderr}")
            time.sleep(1)
            continue
        seconds.append(elapsed)
        outputs.append(json.loads(done.stdout))
    engine.dispose()
    return {
        "check_command_seconds": round(statistics.median(seconds), 2),
        "check_command_runs_seconds": [round(value, 2) for value in seconds],
        "check_command_busy_retries": busy,
        "check_command_result": outputs[-1].get("result"),
    }


def measure(url: str, threads: int, max_customers: int | Literal["all"]) -> dict[str, Any]:
    """Child: one first retrain, then a bare ``xgboost.train`` on the same rows."""
    import numpy as np
    import xgboost

    from predelinq.features import compute_features, configured_features
    from predelinq.modeling.registry import get_version
    from predelinq.retraining.selection import read_labels, select_customers

    engine = open_database(Settings(database_url=url))
    reset_retraining(engine)
    with tempfile.TemporaryDirectory(prefix="predelinq-rbench-models-") as model_dir:
        settings = Settings(database_url=url, model_dir=Path(model_dir), threads=threads)
        result, out = timed_retrain(engine, settings, max_customers, seed=None)
        out["peak_rss_mb"] = round(peak_rss_kib() / 1024)
    if result.model_version is None:
        return out
    with engine.connect() as connection:
        details = get_version(connection, result.model_version).details
        rounds, recorded_params = details["fit"]["rounds"], details["params"]
        trained_ids = set(
            connection.execute(
                select(schema.customer_training_status.c.customer_id).where(
                    schema.customer_training_status.c.included_in_training
                )
            ).scalars()
        )

    # The same rows as the retrain: with no customer trained, the same selection seed picks
    # the same customers in the same order.
    started = time.perf_counter()
    reset_retraining(engine)
    selected = select_customers(engine, max_customers, seed=result.selection_seed)
    observations = read_labels(engine, selected)
    features = compute_features(
        engine, observations.select("customer_id", "observation_date"), settings=settings
    )
    names = list(configured_features(settings).names)
    X = np.asarray(features.select(names).to_numpy(), dtype=float)
    y = np.asarray(observations["label"].to_numpy(), dtype=float)
    rebuild_seconds = time.perf_counter() - started
    started = time.perf_counter()
    matrix = xgboost.DMatrix(X, label=y, missing=np.nan, feature_names=names, nthread=threads)
    dmatrix_seconds = time.perf_counter() - started
    params = recorded_params | {"nthread": threads, "seed": 0}
    started = time.perf_counter()
    xgboost.train(params, matrix, num_boost_round=rounds)  # the refit alone
    bare_seconds = time.perf_counter() - started
    engine.dispose()
    return out | {
        "bare_xgboost_rows": len(y),
        "bare_xgboost_rounds": rounds,
        "bare_xgboost_train_seconds": round(bare_seconds, 2),
        "bare_dmatrix_seconds": round(dmatrix_seconds, 2),
        "ratio": round(result.duration_seconds / bare_seconds, 1),
        "rebuild_matches_retrain": (
            set(selected["customer_id"]) == trained_ids and len(y) == result.samples_trained
        ),
        "rebuild_features_seconds": round(rebuild_seconds, 2),
        "peak_rss_mb_with_bare": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def timed_retrain(
    engine: Engine,
    settings: Settings,
    max_customers: int | Literal["all"],
    *,
    seed: int | None,
) -> tuple[RetrainResult, dict[str, Any]]:
    """One retrain (waiting while another holds the lock), and its summary."""
    from predelinq.retraining.lock import RetrainingBusyError
    from predelinq.retraining.run import retrain

    for busy in range(BUSY_RETRIES + 1):
        try:
            started = time.perf_counter()
            result = retrain(
                engine, settings, max_customers=max_customers, reason="bench", seed=seed
            )
            wall_seconds = time.perf_counter() - started
            break
        except RetrainingBusyError:  # another retrain holds the lock: wait, not measured
            if busy == BUSY_RETRIES:
                raise
            time.sleep(1)
    return result, {
        "status": result.status,
        "error": result.error,
        "selection_seed": result.selection_seed,
        "customers_trained": result.customers_trained,
        "samples_trained": result.samples_trained,
        "training_duration_seconds": round(result.duration_seconds, 2),
        "retrain_call_seconds": round(wall_seconds, 2),
        "stage_seconds": {stage: round(value, 2) for stage, value in result.stage_seconds.items()},
        "auc": _rounded(result.metrics.get("auc")),
        "auc_std": _rounded(result.metrics_std.get("auc")),
        "metrics_source": result.metrics_source,
        "parts": result.parts,
        "rounds": result.parts.get("rounds"),
        "gate": result.gate,
        "busy_retries": busy,
    }


def measure_dask(
    url: str,
    threads: int,
    max_customers: int | Literal["all"],
    seed: int | None,
    cluster_shape: tuple[int, int],
) -> dict[str, Any]:
    """Child: the same first retrain in Dask mode, on a ``LocalCluster`` started here of
    ``cluster_shape`` (worker processes, threads per worker); then every worker's peak RSS."""
    from distributed import Client, LocalCluster

    from predelinq.scaleout.features import partition_count

    workers, threads_per_worker = cluster_shape
    engine = open_database(Settings(database_url=url))
    reset_retraining(engine)
    started = time.perf_counter()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        client.wait_for_workers(workers)
        cluster_start_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="predelinq-rbench-models-") as model_dir:
            settings = Settings(database_url=url, model_dir=Path(model_dir), threads=threads)
            settings.dask_scheduler = cluster.scheduler_address
            result, out = timed_retrain(engine, settings, max_customers, seed=seed)
        worker_kib: dict[str, int] = client.run(peak_rss_kib)
    engine.dispose()
    worker_mb = [round(kib / 1024) for _, kib in sorted(worker_kib.items())]
    return out | {
        "cluster_start_seconds": round(cluster_start_seconds, 2),
        # As the retrain's partitioned_features counts them (a partition may be empty).
        "partitions": partition_count(
            result.customers_trained, workers, settings.dask_partition_customers
        ),
        "dask_partition_customers": settings.dask_partition_customers,
        "client_peak_rss_mb": round(peak_rss_kib() / 1024),  # the scheduler's included
        "worker_peak_rss_mb": worker_mb,
        "worker_peak_rss_mb_max": max(worker_mb, default=None),
    }


def peak_rss_kib() -> int:
    """This process's peak RSS (KiB on Linux); ``client.run`` calls it on each worker."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


if __name__ == "__main__":
    main()
