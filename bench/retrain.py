"""Retraining benchmark: synthesise and ingest N customers, then time a first retrain
(``predelinq.retraining.run.retrain``) end to end on SQLite and on PostgreSQL, next to a bare
``xgboost.train`` on the same matrix.

Each backend is measured in a fresh child process so its peak RSS is the retrain's own. The
retraining state (training status, log, champion, versions) is reset before each run, so
every run is a first retrain, and the model directory is a fresh temporary one. With
``--check-command`` (default when N <= 1000) the whole ``predelinq check --json`` command,
interpreter start included, is also timed (median of 3, state reset before each). Run it
alone on the machine.

    python bench/retrain.py --customers 200 --workdir /tmp/rb
    python bench/retrain.py --customers 100000 --max-customers all --workdir /tmp/fb --json
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
from typing import Any, Literal

from sqlalchemy import Engine, delete, select

from predelinq.cli.common import ExitCode
from predelinq.config import Settings, parse_max_customers
from predelinq.db import open_database, schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import prepare  # noqa: E402  (bench/features.py: synthesise and ingest once)

# Deleted in this order (foreign keys: the champion and its changes refer to versions).
RETRAINING_TABLES = (
    schema.customer_training_status,
    schema.model_training_customers,
    schema.model_retraining_log,
    schema.champion_changes,
    schema.model_champion,
    schema.model_profiles,
    schema.model_versions,
)
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
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: a database URL
    args = parser.parse_args()
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
        for backend in args.backends.split(","):
            url = prepare(backend, workdir, args)
            if not args.json:
                print(f"retraining on {backend} ...", file=sys.stderr)
            command = [sys.executable, __file__, "--measure", url]
            command += ["--threads", str(args.threads), "--max-customers", str(args.max_customers)]
            load_before = os.getloadavg()[0]
            measured = json.loads(run(command).stdout)
            measured["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            if check_command:
                measured.update(time_check_command(url, args.threads, args.max_customers))
            result["backends"][backend] = measured
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
    from predelinq.retraining.lock import RetrainingBusyError
    from predelinq.retraining.run import retrain
    from predelinq.retraining.selection import read_labels, select_customers

    engine = open_database(Settings(database_url=url))
    reset_retraining(engine)
    with tempfile.TemporaryDirectory(prefix="predelinq-rbench-models-") as model_dir:
        settings = Settings(database_url=url, model_dir=Path(model_dir), threads=threads)
        for busy in range(BUSY_RETRIES + 1):
            try:
                started = time.perf_counter()
                result = retrain(engine, settings, max_customers=max_customers, reason="bench")
                wall_seconds = time.perf_counter() - started
                break
            except RetrainingBusyError:  # another retrain holds the lock: wait, not measured
                if busy == BUSY_RETRIES:
                    raise
                time.sleep(1)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {
        "status": result.status,
        "error": result.error,
        "customers_trained": result.customers_trained,
        "samples_trained": result.samples_trained,
        "training_duration_seconds": round(result.duration_seconds, 2),
        "retrain_call_seconds": round(wall_seconds, 2),
        "stage_seconds": {stage: round(value, 2) for stage, value in result.stage_seconds.items()},
        "auc": _rounded(result.metrics.get("auc")),
        "auc_std": _rounded(result.metrics_std.get("auc")),
        "metrics_source": result.metrics_source,
        "parts": result.parts,
        "gate": result.gate,
        "peak_rss_mb": round(peak_rss_mb),
        "busy_retries": busy,
    }
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


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


if __name__ == "__main__":
    main()
