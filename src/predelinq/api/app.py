"""The FastAPI application: ``create_app`` wires settings, database, champion and routers."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from predelinq import __version__
from predelinq.api.batcher import PredictionBatcher
from predelinq.api.champion import ChampionCache
from predelinq.api.deps import AppState
from predelinq.api.jobs import fail_interrupted_jobs
from predelinq.api.routes import health, models, predict, retraining
from predelinq.api.telemetry import JsonLines, RequestTelemetry, Telemetry
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.features.declarations import configured_features

log = logging.getLogger("predelinq.api")


class ConfigurationError(RuntimeError):
    """Serving would expose admin endpoints without a token."""


def _log_requests_to_stdout() -> None:
    """The API's log (a JSON line per request and per model change) on stdout, unless the
    host process has configured logging itself."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; settings are read at start-up when not given (``predelinq.api:app``)."""
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings()
        _log_requests_to_stdout()
        if resolved.admin_token is None and not resolved.dev_mode:
            raise ConfigurationError(
                "refusing to serve: set PREDELINQ_ADMIN_TOKEN (admin endpoints need it), "
                "or PREDELINQ_DEV_MODE=1 for local development"
            )
        # sync endpoints run in AnyIO's thread pool: as many threads as pooled connections
        to_thread.current_default_thread_limiter().total_tokens = resolved.serve_threads
        features = configured_features(resolved)  # a bad [[features]] entry stops start-up
        engine = open_database(resolved, pool_size=resolved.serve_threads)
        fail_interrupted_jobs(engine)  # jobs left running by a server that died
        champion = ChampionCache(engine, resolved, features, on_swap=telemetry.serving)
        champion.start()
        batcher = PredictionBatcher(engine, resolved, features, telemetry.predict_batch)
        app.state.predelinq = AppState(resolved, engine, champion, telemetry, batcher, features)
        try:
            yield
        finally:
            champion.stop()
            engine.dispose()

    app = FastAPI(
        title="predelinq",
        version=__version__,
        lifespan=lifespan,
        description="Pre-delinquency risk scoring with automatic, safe retraining.",
    )

    app.add_middleware(RequestTelemetry, telemetry=telemetry)
    for router in (retraining.router, predict.router, models.router, health.router):
        app.include_router(router)
    return app
