"""Serving benchmark: synthesise and ingest N customers, train a champion, start a real uvicorn
server and load ``POST /predict`` with concurrent clients and ``POST /predict/batch`` with one
large batch, next to the bare ``booster.inplace_predict`` cost for the same rows. While each
load runs, a probe asks ``GET /health`` every ``HEALTH_PROBE_SECONDS`` and reports how long
the answers took (goal: every one within ``health_ms_max``), and a last phase posts
``--heavy-batches`` large batches at once with the probe running.

The server runs in a subprocess (``uvicorn predelinq.api:app``, ``--workers`` processes, two
by default for the two cores, ``PREDELINQ_THREADS=1``) on a fresh temporary model directory,
so the retraining state is reset and a first retrain (all customers) makes the champion on
every run. The clients run in this process, one ``httpx.Client`` per thread, on the same cores
as the server: the figures are indicative, an upper bound on the server's own latency. Run it
alone on the machine.

    python bench/serve.py --customers 2000 --workdir /tmp/sb
    python bench/serve.py --customers 100000 --backend postgres --workdir /tmp/fb --json

The prediction log's cost: ``--log-predictions on,off`` serves ``--rounds`` times with the log
on and off in turn (a fresh server each phase, the log table emptied before it), loads
``/predict`` and times ``/predict/batch`` in each, and prints the medians per setting and the
throughput cost of logging (goal: at most ``LOG_COST_MAX``), with the rows logged and dropped
as the server's metrics count them. A single value (the default, ``on``) runs the benchmark
above with the log on or off.

    python bench/serve.py --customers 2000 --workdir /tmp/sb --log-predictions on,off --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, func, select

from predelinq.config import Settings
from predelinq.db import open_database, schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import prepare  # noqa: E402  (bench/features.py: synthesise and ingest once)
from retrain import BUSY_RETRIES, reset_retraining  # noqa: E402  (bench/retrain.py)

GOALS = {
    "predict_p99_ms_max": 20,
    "predict_requests_per_second_min": 500,
    "predict_at_concurrency": 16,
    "batch_seconds_max": 2.0,
    "batch_rows": 10_000,
    "health_ms_max": 100,
}
LOG_COST_MAX = 0.10  # the prediction log may cost at most this share of /predict throughput
LOG_ROUNDS = 3
HEALTH_PROBE_SECONDS = 0.05
BATCH_RUNS = 3
READY_TIMEOUT_SECONDS = 120
WARMUP_REQUESTS = 20
BARE_ONE_ROW_RUNS = 200
BARE_BATCH_RUNS = 5
SERVER_THREADS = 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="Server worker processes.")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument(
        "--heavy-batches", type=int, default=4, help="Batches posted at once, health probed."
    )
    parser.add_argument("--threads", type=int, default=2, help="Threads for the retrain.")
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) the data here.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument(
        "--log-predictions",
        type=_settings_list,
        default=["on"],
        help="on, off, or on,off: compare the prediction log's cost, alternating.",
    )
    parser.add_argument("--rounds", type=int, default=LOG_ROUNDS, help="Of each setting.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="predelinq-sbench-") as scratch:
        workdir = args.workdir or Path(scratch)
        url = prepare(args.backend, workdir, args)
        model_dir = Path(scratch) / "models"
        settings = Settings(database_url=url, model_dir=model_dir, threads=args.threads)
        engine = open_database(settings)
        champion = train_champion(engine, settings, quiet=args.json)
        ids, as_of = known_customers(engine)
        engine.dispose()
        rng = random.Random(args.seed)
        batch_ids = rng.sample(ids, min(args.batch, len(ids)))
        result: dict[str, Any] = {
            "customers": args.customers,
            "backend": args.backend,
            "champion": champion,
            "as_of": as_of.isoformat(),
            "server": {"workers": args.workers, "threads": SERVER_THREADS},
            "load_average_1m": [round(os.getloadavg()[0], 2)],
        }
        log_path = Path(scratch) / "uvicorn.log"
        if len(args.log_predictions) > 1:
            result["prediction_log"] = compare_logging(
                url, model_dir, log_path, Path(scratch), ids, batch_ids, as_of, args
            )
            result["load_average_1m"].append(round(os.getloadavg()[0], 2))
            print(json.dumps(result, indent=None if args.json else 2))
            return
        logging_env = _logging_env(args.log_predictions[0])
        with serve(
            url, model_dir, log_path, cwd=Path(scratch), workers=args.workers, extra=logging_env
        ) as base_url:
            if not args.json:
                print(f"serving on {base_url}; loading /predict ...", file=sys.stderr)
            with health_probe(base_url) as health:
                result["predict"] = load_predict(base_url, ids, as_of, args)
            result["predict"]["health"] = health.summary()
            result["predict"]["mean_micro_batch"] = mean_micro_batch(base_url)
            if not args.json:
                print(f"/predict/batch with {len(batch_ids)} ids ...", file=sys.stderr)
            with health_probe(base_url) as health:
                result["batch"] = time_batch(base_url, batch_ids, as_of)
            result["batch"]["health"] = health.summary()
            if not args.json:
                print(f"{args.heavy_batches} batches at once ...", file=sys.stderr)
            with health_probe(base_url) as health:
                result["heavy_batches"] = heavy_batches(base_url, batch_ids, as_of, args)
            result["heavy_batches"]["health"] = health.summary()
        result["load_average_1m"].append(round(os.getloadavg()[0], 2))
        if not args.json:
            print("bare inplace_predict ...", file=sys.stderr)
        result["bare"] = bare_cost(settings, batch_ids, as_of)
        result["goals"] = GOALS | {"met": goals_met(result, args)}
    print(json.dumps(result, indent=None if args.json else 2))


def train_champion(engine: Engine, settings: Settings, *, quiet: bool) -> str:
    """A first retrain on all customers: the model dir is new, so forget earlier retrains."""
    from predelinq.retraining.lock import RetrainingBusyError
    from predelinq.retraining.run import retrain

    if not quiet:
        print("training a champion (all customers) ...", file=sys.stderr)
    for busy in range(BUSY_RETRIES + 1):
        try:
            reset_retraining(engine)
            result = retrain(engine, settings, max_customers="all", reason="bench serve")
            break
        except RetrainingBusyError:  # PostgreSQL's advisory lock is database-wide: wait
            if busy == BUSY_RETRIES:
                raise
            time.sleep(1)
    if not result.promoted or result.model_version is None:
        sys.exit(f"retrain did not make a champion: {result.status} {result.error or ''}")
    return result.model_version


def known_customers(engine: Engine) -> tuple[list[str], date]:
    """Every customer id, and the latest label date (the fixed ``as_of``)."""
    with engine.connect() as connection:
        ids = list(connection.execute(select(schema.customers.c.customer_id)).scalars())
        latest = connection.execute(select(func.max(schema.labels.c.observation_date)))
        as_of = latest.scalar_one()
    return sorted(ids), as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))


def _settings_list(text: str) -> list[str]:
    values = [value.strip() for value in text.split(",") if value.strip()]
    if not values or not set(values) <= {"on", "off"} or len(values) != len(set(values)):
        raise argparse.ArgumentTypeError("on, off, or on,off")
    return values


def _logging_env(setting: str) -> dict[str, str]:
    return {"PREDELINQ_LOG_PREDICTIONS": "true" if setting == "on" else "false"}


def compare_logging(
    url: str,
    model_dir: Path,
    log_path: Path,
    scratch: Path,
    ids: list[str],
    batch_ids: list[str],
    as_of: date,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``--rounds`` phases per setting of ``--log-predictions``, in turn: each a fresh server
    (the log table emptied first), ``/predict`` loaded and ``/predict/batch`` timed."""
    phases: dict[str, list[dict[str, Any]]] = {setting: [] for setting in args.log_predictions}
    for round_ in range(args.rounds):
        for setting in args.log_predictions:
            if not args.json:
                print(f"round {round_ + 1}: log {setting} ...", file=sys.stderr)
            empty_log(url)
            extra = _logging_env(setting)
            with serve(
                url, model_dir, log_path, cwd=scratch, workers=args.workers, extra=extra
            ) as base_url:
                predict = load_predict(base_url, ids, as_of, args)
                batch = time_batch(base_url, batch_ids, as_of)
                counted = log_counters(base_url)
            phases[setting].append(
                {
                    "requests_per_second": predict["requests_per_second"],
                    "p99_ms": predict["p99_ms"],
                    "errors": predict["errors"],
                    "batch_rows_per_second": batch["rows_per_second"],
                    **counted,
                    "rows_stored": stored_log_rows(url),  # after the stop: the writer flushed
                }
            )
    summary: dict[str, Any] = {"rounds": args.rounds, "goal_cost_max": LOG_COST_MAX}
    for setting, runs in phases.items():
        summary[setting] = {
            "runs": runs,
            "median_requests_per_second": statistics.median(
                run["requests_per_second"] for run in runs
            ),
            "median_batch_rows_per_second": statistics.median(
                run["batch_rows_per_second"] for run in runs
            ),
        }
    if {"on", "off"} <= set(phases):
        on, off = summary["on"], summary["off"]
        cost = 1 - on["median_requests_per_second"] / off["median_requests_per_second"]
        batch_cost = 1 - on["median_batch_rows_per_second"] / off["median_batch_rows_per_second"]
        summary["predict_throughput_cost"] = round(cost, 4)
        summary["batch_throughput_cost"] = round(batch_cost, 4)
        summary["met"] = cost <= LOG_COST_MAX
    return summary


def empty_log(url: str) -> None:
    engine = open_database(Settings(database_url=url), migrate=False)
    with engine.begin() as connection:
        connection.execute(schema.predictions.delete())
    engine.dispose()


def stored_log_rows(url: str) -> int:
    engine = open_database(Settings(database_url=url), migrate=False)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(schema.predictions))
        count = int(rows.scalar_one())
    engine.dispose()
    return count


def log_counters(base_url: str) -> dict[str, float]:
    """Rows the server logged and dropped so far (all workers), from its metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    names = {
        "predelinq_predictions_logged_total": "rows_logged",
        "predelinq_predictions_log_dropped_total": "rows_dropped",
    }
    counted = dict.fromkeys(names.values(), 0.0)
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        for sample in family.samples:
            if sample.name in names:
                counted[names[sample.name]] += sample.value
    return counted


@contextmanager
def serve(
    url: str,
    model_dir: Path,
    log_path: Path,
    *,
    cwd: Path,
    workers: int,
    extra: dict[str, str] | None = None,
):
    """A real uvicorn server in a subprocess; yields its base URL once ``/ready`` is 200.
    ``extra``: more environment (e.g. ``PREDELINQ_LOG_PREDICTIONS``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # No inherited PREDELINQ_* setting (a read token, a config file) changes what is served.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREDELINQ_")}
    metrics_dir = cwd / "metrics"  # all workers' metrics in every scrape, as `predelinq serve`
    shutil.rmtree(metrics_dir, ignore_errors=True)  # this server's counts only
    metrics_dir.mkdir()
    env |= {
        "DATABASE_URL": url,
        "PREDELINQ_MODEL_DIR": str(model_dir),
        "PREDELINQ_ADMIN_TOKEN": "bench",
        "PREDELINQ_THREADS": str(SERVER_THREADS),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **(extra or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "predelinq.api:app"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        # cwd: a scratch dir, so no ./predelinq.toml is picked up.
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(base_url, server, log_path)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_ready(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                sys.exit(f"uvicorn exited {server.returncode}:\n{log_path.read_text()}")
            try:
                if client.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    sys.exit(f"server not ready after {READY_TIMEOUT_SECONDS} s:\n{log_path.read_text()}")


def load_predict(
    base_url: str, ids: list[str], as_of: date, args: argparse.Namespace
) -> dict[str, Any]:
    """``--concurrency`` clients posting random known ids for ``--seconds``."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for customer_id in random.Random(args.seed).sample(ids, min(WARMUP_REQUESTS, len(ids))):
            client.post("/predict", json={"customer_id": customer_id, "as_of": as_of.isoformat()})
    latencies: list[list[float]] = [[] for _ in range(args.concurrency)]
    failures: list[Counter[str]] = [Counter() for _ in range(args.concurrency)]
    start = threading.Barrier(args.concurrency + 1)
    stop = threading.Event()

    def client_loop(index: int) -> None:
        rng = random.Random(args.seed * 1000 + index)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait()
            while not stop.is_set():
                body = {"customer_id": rng.choice(ids), "as_of": as_of.isoformat()}
                began = time.perf_counter()
                try:
                    status = client.post("/predict", json=body).status_code
                except httpx.HTTPError as error:
                    status = error.__class__.__name__
                latencies[index].append(time.perf_counter() - began)
                if status != 200:
                    failures[index][str(status)] += 1

    threads = [
        threading.Thread(target=client_loop, args=(index,), daemon=True)
        for index in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    milliseconds = np.array([value for values in latencies for value in values]) * 1000
    errors = sum(failures, Counter())
    p50, p90, p99 = np.percentile(milliseconds, [50, 90, 99]) if milliseconds.size else [None] * 3
    return {
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 2),
        "requests": int(milliseconds.size),
        "requests_per_second": round(milliseconds.size / elapsed, 1),
        "p50_ms": _rounded(p50),
        "p90_ms": _rounded(p90),
        "p99_ms": _rounded(p99),
        "max_ms": _rounded(milliseconds.max() if milliseconds.size else None),
        "errors": sum(errors.values()),
        "errors_by_status": dict(errors),
    }


class HealthProbe:
    """``GET /health`` every ``HEALTH_PROBE_SECONDS`` on its own connection, timed."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.milliseconds: list[float] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    ok = client.get("/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.milliseconds.append((time.perf_counter() - began) * 1000)
                self.failures += not ok
                self.stop.wait(HEALTH_PROBE_SECONDS)

    def summary(self) -> dict[str, Any]:
        values = np.array(self.milliseconds)
        p50, p99 = np.percentile(values, [50, 99]) if values.size else [None] * 2
        return {
            "probes": int(values.size),
            "p50_ms": _rounded(p50),
            "p99_ms": _rounded(p99),
            "max_ms": _rounded(values.max() if values.size else None),
            "over_goal": int((values > GOALS["health_ms_max"]).sum()),
            "failures": self.failures,
        }


@contextmanager
def health_probe(base_url: str):
    probe = HealthProbe(base_url)
    probe.thread.start()
    try:
        yield probe
    finally:
        probe.stop.set()
        probe.thread.join()


def heavy_batches(
    base_url: str, ids: list[str], as_of: date, args: argparse.Namespace
) -> dict[str, Any]:
    """``--heavy-batches`` posts of the whole batch at once, each on its own connection."""
    body = {"customer_ids": ids, "as_of": as_of.isoformat()}

    def post(_: int) -> tuple[float, int]:
        with httpx.Client(base_url=base_url, timeout=600) as client:
            began = time.perf_counter()
            status = client.post("/predict/batch", json=body).status_code
            return time.perf_counter() - began, status

    with ThreadPoolExecutor(args.heavy_batches) as pool:
        runs = list(pool.map(post, range(args.heavy_batches)))
    return {
        "batches": args.heavy_batches,
        "rows": len(ids),
        "seconds": [round(seconds, 3) for seconds, _ in runs],
        "statuses": sorted({status for _, status in runs}),
    }


def mean_micro_batch(base_url: str) -> float | None:
    """Customers per /predict micro-batch over the run, from the server's metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text)
        for sample in family.samples
        if sample.name.startswith("predelinq_predict_batch_size")
    }
    count = samples.get("predelinq_predict_batch_size_count")
    return round(samples["predelinq_predict_batch_size_sum"] / count, 2) if count else None


def time_batch(base_url: str, ids: list[str], as_of: date) -> dict[str, Any]:
    """``BATCH_RUNS`` posts of the whole batch; wall time per request, response parsed."""
    body = {"customer_ids": ids, "as_of": as_of.isoformat()}
    seconds, scored = [], []
    with httpx.Client(base_url=base_url, timeout=300) as client:
        for _ in range(BATCH_RUNS):
            began = time.perf_counter()
            response = client.post("/predict/batch", json=body)
            response.raise_for_status()
            scored.append(len(response.json()["predictions"]))
            seconds.append(time.perf_counter() - began)
    median = statistics.median(seconds)
    return {
        "rows": len(ids),
        "scored": scored[-1],
        "runs_seconds": [round(value, 3) for value in seconds],
        "median_seconds": round(median, 3),
        "rows_per_second": round(len(ids) / median),
    }


def bare_cost(settings: Settings, ids: list[str], as_of: date) -> dict[str, Any]:
    """The served path without HTTP: features (read included) for one customer and for the
    batch, as the API computes them, then the champion's ``inplace_predict`` timed."""
    import xgboost

    from predelinq.db.readers import read_at_date
    from predelinq.features import configured_features, feature_matrix_at_date
    from predelinq.features.export import features_as_of
    from predelinq.modeling.registry import load_champion
    from predelinq.serving.score import for_serving

    settings = settings.model_copy(update={"threads": SERVER_THREADS})
    feature_set = configured_features(settings)
    names = list(feature_set.names)
    engine = open_database(settings)
    champion = load_champion(engine, settings.model_dir, feature_set)
    assert champion is not None, "no champion: the bench retrains first"
    with engine.connect() as connection:

        def one_customer() -> None:
            inputs = read_at_date(connection, ids[:1], as_of)
            feature_matrix_at_date(ids[:1], as_of, inputs, feature_set)

        one_customer_ms = _median_ms(one_customer, BARE_ONE_ROW_RUNS)
    booster = for_serving(champion, settings).booster  # as the server's ChampionCache
    began = time.perf_counter()
    features = features_as_of(engine, settings, as_of, ids)
    features_seconds = time.perf_counter() - began
    engine.dispose()
    X = features.select(names).to_numpy()
    one = X[:1]
    matrix = xgboost.DMatrix(one, feature_names=names, missing=np.nan)
    return {
        "rows": X.shape[0],
        "threads": SERVER_THREADS,
        "features_1_customer_ms": one_customer_ms,
        "inplace_predict_1_row_ms": _median_ms(
            lambda: booster.inplace_predict(one), BARE_ONE_ROW_RUNS
        ),
        "inplace_predict_batch_ms": _median_ms(lambda: booster.inplace_predict(X), BARE_BATCH_RUNS),
        # what /predict adds on top of the score: the per-feature contributions
        "pred_contribs_1_row_ms": _median_ms(
            lambda: booster.predict(matrix, pred_contribs=True), BARE_ONE_ROW_RUNS
        ),
        "features_batch_seconds_once": round(features_seconds, 3),
    }


def goals_met(result: dict[str, Any], args: argparse.Namespace) -> dict[str, bool | None]:
    """Each goal, or None when this run's setup is not the goal's (clients, batch size)."""
    predict, batch = result["predict"], result["batch"]
    met: dict[str, bool | None] = {"predict_p99": None, "predict_throughput": None, "batch": None}
    probes = [result[phase]["health"] for phase in ("predict", "batch", "heavy_batches")]
    worst = [probe["max_ms"] for probe in probes if probe["max_ms"] is not None]
    met["health"] = bool(worst) and max(worst) <= GOALS["health_ms_max"]
    if args.concurrency == GOALS["predict_at_concurrency"] and predict["p99_ms"] is not None:
        met["predict_p99"] = predict["p99_ms"] <= GOALS["predict_p99_ms_max"]
        rate = predict["requests_per_second"]
        met["predict_throughput"] = rate >= GOALS["predict_requests_per_second_min"]
    if batch["rows"] == GOALS["batch_rows"]:
        met["batch"] = batch["median_seconds"] <= GOALS["batch_seconds_max"]
    return met


def _median_ms(call, runs: int) -> float:
    call()  # warm-up
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return round(statistics.median(seconds) * 1000, 3)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


if __name__ == "__main__":
    main()
