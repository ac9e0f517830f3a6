"""The FastAPI application: ``create_app`` wires settings, database, champion and routers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from predelinq import __version__
from predelinq.api.champion import ChampionCache
from predelinq.api.deps import AppState
from predelinq.api.routes import health, models, predict, retraining
from predelinq.api.telemetry import Telemetry
from predelinq.config import Settings
from predelinq.db import open_database

log = logging.getLogger("predelinq.api")


class ConfigurationError(RuntimeError):
    """Serving would expose admin endpoints without a token."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; settings are read at start-up when not given (``predelinq.api:app``)."""
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings()
        if resolved.admin_token is None and not resolved.dev_mode:
            raise ConfigurationError(
                "refusing to serve: set PREDELINQ_ADMIN_TOKEN (admin endpoints need it), "
                "or PREDELINQ_DEV_MODE=1 for local development"
            )
        engine = open_database(resolved)
        champion = ChampionCache(engine, resolved)
        champion.start()
        app.state.predelinq = AppState(resolved, engine, champion, telemetry)
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

    @app.middleware("http")
    async def timing(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        seconds = time.perf_counter() - started
        telemetry.latency.labels(request.method, route, str(response.status_code)).observe(seconds)
        log.info("%s %s %s %.1fms", request.method, route, response.status_code, seconds * 1000)
        return response

    for router in (retraining.router, predict.router, models.router, health.router):
        app.include_router(router)
    return app
