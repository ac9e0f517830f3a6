"""The FastAPI application: ``create_app(settings)`` wires database, champion, routers, the
error table (``errors.py``) and the docs (``docs.py``), and the limits every response keeps:
a request body limit (413), 422 bodies that echo at most ``ECHO_CHARS`` of any value, and
``nosniff`` and ``no-store`` headers. Building the app opens nothing; the server's start
(the lifespan) opens the database and loads the champion."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from predelinq import __version__
from predelinq.api.deps import AppState
from predelinq.api.docs import add_docs
from predelinq.api.errors import register as register_errors
from predelinq.api.routes import health, models, monitoring, predict, retraining
from predelinq.api.telemetry import JsonLines, RequestTelemetry, Telemetry
from predelinq.api.ui import routes as ui
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.db.summary import data_as_of
from predelinq.errors import PredelinqError
from predelinq.features.parse import configured_features
from predelinq.monitoring.history import DriftHistory, drift_history
from predelinq.monitoring.predictions import PredictionLog
from predelinq.monitoring.report import MonitorReport, ReportCache, monitor
from predelinq.retraining.jobs import fail_interrupted_jobs
from predelinq.serving.batcher import PredictionBatcher
from predelinq.serving.champion import ChampionCache

# How long a thread may hold the GIL while another waits (Python's default: 5 ms). Scoring
# threads are CPU-bound Python; handing the GIL back sooner lets the event loop answer
# /health and parse requests between their steps.
SWITCH_INTERVAL_SECONDS = 0.001
# How long a stopping server waits for a monitoring report or drift history under way (at
# 100,000 customers each takes 10-20 s; a daemon thread left past it dies with the process).
REPORT_STOP_SECONDS = 30


class ConfigurationError(PredelinqError, RuntimeError):
    """The settings cannot be served: no admin token, or an empty one."""


def check_tokens(settings: Settings) -> None:
    """Refuse to serve without an admin token (unless in development mode), or with a token
    that is empty or only whitespace: one that anyone could guess."""
    tokens = {
        "PREDELINQ_ADMIN_TOKEN": settings.admin_token,
        "PREDELINQ_READ_TOKEN": settings.read_token,
    }
    for name, token in tokens.items():
        if token is not None and not token.get_secret_value().strip():
            raise ConfigurationError(
                f"refusing to serve: {name} is empty or blank; set a real token"
            )
    if settings.admin_token is None and not settings.dev_mode:
        raise ConfigurationError(
            "refusing to serve: set PREDELINQ_ADMIN_TOKEN (admin endpoints need it), "
            "or PREDELINQ_DEV_MODE=1 for local development"
        )


def _log_to_stdout() -> None:
    """predelinq's log (a JSON line per request, per model change and per failed job) on
    stdout, unless the host process has configured logging itself. The handler sits on the
    package's logger, ``predelinq``, which every module's logger (``__name__``) reaches."""
    package = logging.getLogger("predelinq")
    if package.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines())
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def _prediction_log(
    settings: Settings, engine: Engine, telemetry: Telemetry
) -> PredictionLog | None:
    """The started writer of served scores, or None with ``log_predictions`` off."""
    if not settings.log_predictions:
        return None
    prediction_log = PredictionLog(
        engine,
        settings.prediction_retention_days,
        logged=telemetry.predictions_logged,
        dropped=telemetry.predictions_dropped,
    )
    prediction_log.start()
    return prediction_log


def _report_cache(
    settings: Settings, engine: Engine, telemetry: Telemetry
) -> ReportCache[MonitorReport]:
    """GET /monitoring's report, computed in the background; its PSI go to the gauges."""

    def record(report: MonitorReport) -> None:
        drift = report.drift
        telemetry.drift(drift.model_version, drift.score_psi, drift.features)

    return ReportCache(
        lambda: monitor(engine, settings), settings.monitoring.cache_seconds, on_report=record
    )


def _drift_history_cache(
    settings: Settings, engine: Engine, reports: ReportCache[MonitorReport]
) -> ReportCache[DriftHistory]:
    """The dashboard's drift over time, as of the monitoring report's date (the data's
    today), kept as long as the report. It is computed after the report, not beside it: at
    100,000 customers the two at once peaked at 3.1 GB and shared the cores."""

    def compute() -> DriftHistory:
        reports.wait()
        report = reports.latest()
        if report is not None:
            as_of = report.as_of
        else:
            with engine.connect() as connection:
                as_of = data_as_of(connection)
        return drift_history(engine, settings, as_of)

    return ReportCache(compute, settings.monitoring.cache_seconds)


def create_app(settings: Settings) -> FastAPI:
    """The app for ``settings``: tokens checked now, the database opened and the champion
    loaded when the server starts it (its lifespan)."""
    check_tokens(settings)
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_to_stdout()
        # sync endpoints run in AnyIO's thread pool: as many threads as pooled connections
        to_thread.current_default_thread_limiter().total_tokens = settings.serve_threads
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        features = configured_features(settings)  # a bad [[features]] entry stops start-up
        # one more pooled connection than request threads: the prediction log's writer
        engine = open_database(settings, pool_size=settings.serve_threads + 1)
        fail_interrupted_jobs(engine)  # jobs left running by a server that died
        champion = ChampionCache(engine, settings, features, on_swap=telemetry.serving)
        champion.start()
        prediction_log = _prediction_log(settings, engine, telemetry)
        batcher = PredictionBatcher(
            engine, settings, features, telemetry.predict_batch, prediction_log
        )
        reports = _report_cache(settings, engine, telemetry)
        history = _drift_history_cache(settings, engine, reports)
        app.state.predelinq = AppState(
            settings, engine, champion, telemetry, batcher, features, reports, history
        )
        try:
            yield
        finally:
            # a report under way finishes before the engine it reads through is disposed
            for cache in (reports, history):
                cache.wait(REPORT_STOP_SECONDS)
            champion.stop()
            batcher.close()
            if prediction_log is not None:
                prediction_log.close()  # after the batcher: what it scored is written
            engine.dispose()

    app = FastAPI(
        title="predelinq",
        version=__version__,
        lifespan=lifespan,
        description="Pre-delinquency risk scoring with automatic, safe retraining.",
        # served by api/docs.py, behind the read token when one is set
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={RequestValidationError: _validation_error},
    )
    register_errors(app)
    # the last added runs outermost: the headers go on every response (a 413 too), and the
    # request log sees every status
    app.add_middleware(BodyLimit, max_body_size=settings.max_body_bytes)
    app.add_middleware(RequestTelemetry, telemetry=telemetry)
    app.add_middleware(SecurityHeaders)
    routers = (
        retraining.router,
        predict.router,
        models.router,
        monitoring.router,
        health.router,
        ui.router,
    )
    for router in routers:
        app.include_router(router)
    add_docs(app)
    return app


SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
# The dashboard's pages load nothing from elsewhere and run only the served scripts. Plotly
# writes inline styles, and draws heatmaps as data: images.
PAGE_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = [(b"content-security-policy", PAGE_POLICY), (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` (a browser never reads a JSON body as a page) and
    ``Cache-Control: no-store`` (scores stay out of browser and proxy caches) on every
    response, and on the dashboard's a content security policy that keeps its pages to what
    the server sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        wanted = SECURITY_HEADERS + (PAGE_HEADERS if scope["path"].startswith("/ui") else [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [header for header in wanted if header[0] not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit(RequestBodyLimitMiddleware):
    """413 for a request body over ``max_body_size``: at once by its Content-Length (naming
    the setting), or as it streams in (Starlette's limiter)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = Headers(scope=scope).get("content-length", "") if scope["type"] == "http" else ""
        if length.isdigit() and int(length) > self.max_body_size:
            detail = f"request body over {self.max_body_size:,} bytes (PREDELINQ_MAX_BODY_BYTES)"
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


ECHO_CHARS = 60  # of a value echoed in a 422
ECHO_ITEMS = 10  # of a list or object echoed in a 422
MAX_ERRORS = 50  # listed in a 422


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 body, with each echoed input cut to a few characters and made valid
    UTF-8: a 10 MB value was echoed whole, and a lone surrogate could not be encoded (a 500)."""
    assert isinstance(error, RequestValidationError)
    detail = [
        {key: _echo(value) if key in ("input", "loc", "ctx") else value for key, value in e.items()}
        for e in error.errors()[:MAX_ERRORS]
    ]
    return JSONResponse(jsonable_encoder({"detail": detail}), status_code=422)


def _echo(value: object, depth: int = 0) -> object:
    """``value`` bounded for an error body: strings cut to ``ECHO_CHARS``, lists and objects to
    ``ECHO_ITEMS`` entries and three levels, text that is not valid Unicode escaped."""
    if isinstance(value, str):
        cut = value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "..."
        return cut.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth >= 3 and isinstance(value, dict | list | tuple):
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:ECHO_ITEMS]
        return {_echo(str(key), depth + 1): _echo(item, depth + 1) for key, item in items}
    if isinstance(value, list | tuple):
        return [_echo(item, depth + 1) for item in value[:ECHO_ITEMS]]
    if isinstance(value, bytes):
        return _echo(value.decode("utf-8", "backslashreplace"), depth)
    return value
