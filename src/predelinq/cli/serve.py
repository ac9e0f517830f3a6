"""The commands that run in the foreground until stopped: schedule (check on a timer, an
alternative to cron) and serve (the HTTP API under uvicorn)."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from typing import Annotated

import typer
from rich.markup import escape

from predelinq.cli.common import ExitCode, console, fail, open_database
from predelinq.config import Settings

commands = typer.Typer()


@commands.command()
def schedule(
    every: Annotated[str | None, typer.Option(help="Interval, e.g. 30m, 24h, 1d.")] = None,
    cron: Annotated[
        str | None, typer.Option(help='Cron expression in UTC, e.g. "0 2 * * *".')
    ] = None,
) -> None:
    """Run check on a schedule, in the foreground, until stopped (an alternative to cron)."""
    import logging

    from predelinq.retraining.lock import RetrainingBusyError
    from predelinq.retraining.run import check_and_retrain
    from predelinq.retraining.schedule import make_trigger, run_forever

    try:
        trigger = make_trigger(every=every, cron=cron)
    except ValueError as error:
        fail(ExitCode.USAGE, escape(str(error)))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("predelinq.schedule")

    def job() -> None:
        settings = Settings()
        engine = open_database(settings)
        try:
            outcome = check_and_retrain(engine, settings, actor="schedule")
        except RetrainingBusyError as error:
            log.warning("skipped: %s", error)
            return
        finally:
            engine.dispose()  # one engine per run: a long-running schedule holds no pool
        result = outcome.result
        log.info(
            "check: %s; %s",
            outcome.decision.reason,
            "no retrain" if result is None else json.dumps(result.as_response()),
        )

    console.print(f"running check on {trigger} (Ctrl-C to stop)")
    try:
        run_forever(job, trigger)
    except (KeyboardInterrupt, SystemExit):
        console.print("stopped")


@commands.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (more serve more requests at once).")
    ] = 1,
) -> None:
    """Serve the HTTP API (predelinq.api:app) with uvicorn: one worker process by default."""
    import uvicorn

    from predelinq.api.factory import check_tokens
    from predelinq.features import configured_features

    # What would stop each worker's start-up, checked here: one line and an exit code, not a
    # traceback per worker from uvicorn.
    settings = Settings()
    check_tokens(settings)
    configured_features(settings)
    open_database(settings).dispose()
    shown = f"[{host}]" if ":" in host else host
    console.print(f"dashboard: http://{shown}:{port}/ui   API docs: http://{shown}:{port}/docs")
    with ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # each worker counts in its own process: sum them at every scrape
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="predelinq-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        # access_log off: the app logs every request itself, as one JSON line
        uvicorn.run(
            "predelinq.api:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
