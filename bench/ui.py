"""Dashboard benchmark: the server time of each ``/ui`` page on a database of N customers
(goal: at most ``GOAL_SERVER_MS`` per page, with the aggregates cached).

Preparation is bench/monitor.py's: synthesise and ingest N customers once per workdir
(bench/features.py) and train a champion on ``--train-customers`` of them (kept in the
workdir and reused while the database still names it). The prediction log is then emptied
and refilled: ``--logged-customers`` customers scored by ``predelinq.serving.score`` at
``--logged-dates`` dates a month apart, so the Customer page shows the score history of the
customer with the most logged rows.

Once the 1-minute load average has stayed below ``--quiet-load`` for a minute (at most
``--quiet-wait-minutes``), a real uvicorn server starts in a subprocess (bench/serve.py's
``serve``; ``PREDELINQ_DEV_MODE=1``, ``PREDELINQ_THREADS`` set). Each page is asked once (the
cold request starts the background aggregates); the cheapest of those computing is polled
until it answers ``X-Dashboard-Cache: ready``, then the others (the time since the first
request is the background computation's); then each page is asked ``--rounds`` times in turn.
Per page: the median and max of the ``Server-Timing`` app duration and of the client's wall
time; the server's peak RSS (``VmHWM``). The client runs on the same cores as the server. Run
it alone on the machine.

    python bench/ui.py --customers 100000 --backends sqlite --workdir /tmp/fb --json
    python bench/ui.py --customers 2000 --backends sqlite --pages health=/health,docs=/docs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import polars as pl
from sqlalchemy import func, select

from predelinq.config import Settings
from predelinq.db import open_database, schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import prepare  # noqa: E402  (bench/features.py: synthesise and ingest once)
from monitor import train  # noqa: E402  (bench/monitor.py: a champion on 5,000 customers)
from serve import empty_log, known_customers, serve  # noqa: E402  (bench/serve.py)

GOAL_SERVER_MS = 300.0
# The pages of the dashboard's contract; ``{customer_id}`` is the customer with most history.
PAGES = {
    "overview": "/ui",
    "history": "/ui/history",
    "models": "/ui/models",
    "drift": "/ui/drift",
    "customer": "/ui/customers?customer_id={customer_id}",
    "admin": "/ui/admin",
}
CACHE_HEADER = "x-dashboard-cache"
POLL_SECONDS = 0.5  # between two sweeps over the pages still computing
READY_TIMEOUT_SECONDS = 900
QUIET_SECONDS = 60  # the load must stay below --quiet-load this long
QUIET_POLL_SECONDS = 5
REQUEST_TIMEOUT_SECONDS = 120
LOG_TAIL_CHARS = 4000  # of the server's log, when it fails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="Training's and the server's.")
    parser.add_argument("--backends", type=_backends, default=["sqlite", "postgres"])
    parser.add_argument("--rounds", type=int, default=20, help="Requests of each page.")
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes.")
    parser.add_argument("--train-customers", type=int, default=5000)
    parser.add_argument("--logged-customers", type=int, default=2000)
    parser.add_argument("--logged-dates", type=int, default=6)
    parser.add_argument("--pages", type=_pages, default=PAGES, help="name=/path,... to time.")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="0: do not wait.")
    parser.add_argument("--quiet-wait-minutes", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) the data here.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="predelinq-uibench-") as scratch:
        workdir = args.workdir or Path(scratch)
        result: dict[str, Any] = {
            "customers": args.customers,
            "rounds": args.rounds,
            "server": {"workers": args.workers, "threads": args.threads},
            "goal_server_ms_max": GOAL_SERVER_MS,
            "backends": {},
        }
        for backend in args.backends:
            scratch_dir = Path(scratch) / backend
            scratch_dir.mkdir()
            result["backends"][backend] = measure_backend(backend, workdir, scratch_dir, args)
    print(json.dumps(result, indent=None if args.json else 2))


def measure_backend(
    backend: str, workdir: Path, scratch: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Prepare (data, champion, prediction history), wait for a quiet machine, serve, time."""
    url = prepare(backend, workdir, args)
    model_dir = workdir / f"ui_models_{args.customers}_{args.seed}_{backend}"
    champion = ensure_champion(url, model_dir, args)
    logged = log_history(url, model_dir, args)
    quiet = wait_quiet(args)
    pages = {
        name: path.format(customer_id=logged["customer_id"]) for name, path in args.pages.items()
    }
    # serve() also sets an admin token; the pages read without one (no read token is set)
    extra = {"PREDELINQ_DEV_MODE": "1", "PREDELINQ_THREADS": str(args.threads)}
    log_path = scratch / "uvicorn.log"
    with serve(url, model_dir, log_path, cwd=scratch, workers=args.workers, extra=extra) as base:
        _say(args, f"serving {backend} on {base}; timing the pages ...")
        timed = time_pages(base, pages, args)
        failed = [name for name, page in timed["pages"].items() if page["failures"]]
        if failed:  # say why on stderr; the JSON counts them
            log_tail = log_path.read_text()[-LOG_TAIL_CHARS:]
            print(
                f"failed: {', '.join(failed)}; the server's log ends:\n{log_tail}", file=sys.stderr
            )
        timed["peak_rss_mb"] = server_peak_rss_mb(base)
    timed["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return {"champion": champion, "prediction_history": logged, "quiet": quiet, **timed}


def ensure_champion(url: str, model_dir: Path, args: argparse.Namespace) -> str:
    """The champion whose artifact is in ``model_dir``; trained (bench/monitor.py's ``train``,
    the retraining state reset) when the database names none, or one stored elsewhere."""
    from predelinq.errors import PredelinqError
    from predelinq.features import configured_features
    from predelinq.modeling.registry import load_champion

    settings = Settings(database_url=url, model_dir=model_dir, threads=args.threads)
    engine = open_database(settings)
    try:
        champion = load_champion(engine, model_dir, configured_features(settings))
    except PredelinqError:  # an artifact missing or another feature set: train our own
        champion = None
    if champion is None:
        engine.dispose()
        train(url, model_dir, args)
        engine = open_database(settings)
        champion = load_champion(engine, model_dir, configured_features(settings))
        assert champion is not None, "the retrain promoted no champion"
    engine.dispose()
    return champion.version


def log_history(url: str, model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Empty the prediction log, then score ``--logged-customers`` customers (known at the
    first date) at ``--logged-dates`` dates 30 days apart ending at the latest label date,
    each date logged in one write as ``predelinq score`` does; the customer with most rows."""
    from predelinq.features.export import customers_as_of
    from predelinq.serving.score import score_customers

    settings = Settings(
        database_url=url, model_dir=model_dir, threads=args.threads, log_predictions=True
    )
    empty_log(url)
    engine = open_database(settings)
    _, latest = known_customers(engine)
    dates = [latest - timedelta(days=30 * k) for k in reversed(range(args.logged_dates))]
    known = customers_as_of(engine, dates[0]).sort().to_list()
    sample = sorted(random.Random(args.seed).sample(known, min(args.logged_customers, len(known))))
    _say(args, f"logging scores of {len(sample)} customers at {len(dates)} dates ...")
    started = time.perf_counter()
    for as_of in dates:
        score_customers(engine, settings, as_of=as_of, customer_ids=pl.Series(sample))
    seconds = time.perf_counter() - started
    count = func.count().label("rows")
    query = (
        select(schema.predictions.c.customer_id, count)
        .group_by(schema.predictions.c.customer_id)
        .order_by(count.desc(), schema.predictions.c.customer_id)
        .limit(1)
    )
    with engine.connect() as connection:
        customer_id, rows = connection.execute(query).one()
        total = connection.execute(select(func.count()).select_from(schema.predictions))
        logged = int(total.scalar_one())
    engine.dispose()
    return {
        "customers": len(sample),
        "dates": [as_of.isoformat() for as_of in dates],
        "rows": logged,
        "seconds": round(seconds, 2),
        "customer_id": customer_id,
        "customer_rows": int(rows),
    }


def wait_quiet(args: argparse.Namespace) -> dict[str, Any]:
    """Wait until the 1-minute load average has stayed below ``--quiet-load`` for
    ``QUIET_SECONDS``, or ``--quiet-wait-minutes`` have passed (``quiet`` false then)."""
    began = time.monotonic()
    first = os.getloadavg()[0]
    below_since: float | None = None
    quiet = args.quiet_load <= 0
    if not quiet:
        _say(args, f"waiting for the load (now {first:.2f}) to stay below {args.quiet_load} ...")
    while not quiet and time.monotonic() - began < args.quiet_wait_minutes * 60:
        now = time.monotonic()
        if os.getloadavg()[0] >= args.quiet_load:
            below_since = None
        elif below_since is None:
            below_since = now
        elif now - below_since >= QUIET_SECONDS:
            quiet = True
            break
        time.sleep(QUIET_POLL_SECONDS)
    return {
        "quiet": quiet,
        "waited_seconds": round(time.monotonic() - began),
        "load_average_1m_before_wait": round(first, 2),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def time_pages(base_url: str, pages: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Each page once (cold), then polled until its cache is ready, then ``--rounds`` rounds
    of every page in turn; a page without the cache header counts as ready."""
    runs: dict[str, list[Request]] = {name: [] for name in pages}
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        started = time.perf_counter()
        cold = {name: get(client, path) for name, path in pages.items()}
        ready_after = {
            name: 0.0 for name, request in cold.items() if request.cache in (None, "ready")
        }
        # The cheapest computing page is polled; only once it is ready are the others asked
        # (they share the cache): polling a page that scans the database slowed the
        # background computation itself (100k customers: 30 polls of every page).
        waiting = sorted(
            (name for name in pages if name not in ready_after),
            key=lambda name: cold[name].server_ms or float("inf"),
        )
        polls = 0
        while waiting:
            if time.perf_counter() - started > READY_TIMEOUT_SECONDS:
                sys.exit(f"pages not ready after {READY_TIMEOUT_SECONDS} s: {waiting}")
            time.sleep(POLL_SECONDS)
            for name in waiting:
                polls += 1
                if get(client, pages[name]).cache != "ready":
                    break
                ready_after[name] = round(time.perf_counter() - started, 2)
            waiting = [name for name in waiting if name not in ready_after]
        _say(args, f"aggregates ready after {max(ready_after.values()):.1f} s ({polls} polls)")
        load_at_timing = round(os.getloadavg()[0], 2)
        for _ in range(args.rounds):
            for name, path in pages.items():
                runs[name].append(get(client, path))
    summaries = {name: summarise(requests) for name, requests in runs.items()}
    medians = [summary["server_ms_median"] for summary in summaries.values()]
    return {
        "background_seconds": max(ready_after.values()),
        "polls_while_computing": polls,
        "load_average_1m_at_timing": load_at_timing,
        # None when a page gave no Server-Timing
        "met": None if None in medians else all(median <= GOAL_SERVER_MS for median in medians),
        "pages": {
            name: {
                "path": pages[name],
                "ready_after_seconds": ready_after[name],
                "cold": cold[name].as_dict(),
                **summaries[name],
            }
            for name in pages
        },
    }


@dataclass(frozen=True)
class Request:
    """One timed GET: status, the server's own duration (``Server-Timing: app;dur=``), the
    client's wall time, the cache state and the body's size."""

    status: int
    server_ms: float | None
    wall_ms: float
    cache: str | None
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "server_ms": _rounded(self.server_ms),
            "wall_ms": _rounded(self.wall_ms),
            "cache": self.cache,
        }


def get(client: httpx.Client, path: str) -> Request:
    """``path`` timed; a connection the server dropped is status 0."""
    began = time.perf_counter()
    try:
        response = client.get(path)
    except httpx.TransportError:
        return Request(0, None, (time.perf_counter() - began) * 1000, None, 0)
    wall_ms = (time.perf_counter() - began) * 1000
    return Request(
        response.status_code,
        app_duration_ms(response.headers.get("server-timing")),
        wall_ms,
        response.headers.get(CACHE_HEADER),
        len(response.content),
    )


def app_duration_ms(header: str | None) -> float | None:
    """``dur`` of the ``app`` metric of a ``Server-Timing`` header (``app;dur=12.3``)."""
    for metric in (header or "").split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        if name == "app":
            for param in params:
                key, _, value = param.partition("=")
                if key.strip() == "dur":
                    return float(value)
    return None


def summarise(requests: list[Request]) -> dict[str, Any]:
    server = [request.server_ms for request in requests if request.server_ms is not None]
    wall = [request.wall_ms for request in requests]
    return {
        "server_ms_median": _rounded(statistics.median(server) if server else None),
        "server_ms_max": _rounded(max(server) if server else None),
        "wall_ms_median": _rounded(statistics.median(wall) if wall else None),
        "wall_ms_max": _rounded(max(wall) if wall else None),
        "over_goal": sum(value > GOAL_SERVER_MS for value in server),
        "without_server_timing": len(requests) - len(server),
        "statuses": sorted({request.status for request in requests}),
        "failures": sum(not 200 <= request.status < 400 for request in requests),
        "not_ready": sum(request.cache not in (None, "ready") for request in requests),
        "bytes": requests[-1].bytes if requests else None,
    }


def server_peak_rss_mb(base_url: str) -> int | None:
    """The largest ``VmHWM`` of the uvicorn process serving ``base_url`` (this process's child)
    and of its worker processes, from /proc; None where /proc is not Linux's."""
    port = str(urlsplit(base_url).port)
    processes: dict[int, tuple[int, list[str]]] = {}  # pid -> (parent pid, command line)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        processes[int(entry.name)] = (parent, command)
    roots = [
        pid
        for pid, (parent, command) in processes.items()
        if parent == os.getpid() and "uvicorn" in command and port in command
    ]
    tree = [*roots, *(pid for pid, (parent, _) in processes.items() if parent in roots)]
    peaks = [_peak_rss_kb(pid) for pid in tree]
    known = [peak for peak in peaks if peak is not None]
    return round(max(known) / 1024) if known else None


def _peak_rss_kb(pid: int) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), None)


def _backends(text: str) -> list[str]:
    """``sqlite``, ``postgres`` (or ``postgresql``), comma-separated."""
    names = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres"}
    values = [value.strip() for value in text.split(",") if value.strip()]
    if not values or any(value not in names for value in values):
        raise argparse.ArgumentTypeError("sqlite, postgres or sqlite,postgres")
    return [names[value] for value in values]


def _pages(text: str) -> dict[str, str]:
    """``name=/path,...``: pages to time instead of the dashboard's."""
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    if not pairs or any(not name or not path.startswith("/") for name, _, path in pairs):
        raise argparse.ArgumentTypeError("name=/path,name=/path")
    return {name.strip(): path.strip() for name, _, path in pairs}


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


if __name__ == "__main__":
    main()
