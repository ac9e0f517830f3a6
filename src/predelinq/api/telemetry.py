"""Prometheus metrics, one registry per app (tests run several apps in one process), and the
request middleware that times every request and logs it (as one JSON line on stdout with
``JsonLines``).

With several worker processes each keeps its own counts; when ``PROMETHEUS_MULTIPROC_DIR``
names a directory (``predelinq serve --workers N`` sets one up), prometheus_client's
multiprocess mode writes them there and ``/metrics`` reports the sum over all workers,
whichever worker answers the scrape."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "predelinq_request_seconds",
            "Request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "predelinq_predictions_total",
            "Customers scored, by model version",
            ["model_version"],
            registry=self.registry,
        )
        self.predictions_logged = Counter(
            "predelinq_predictions_logged_total",
            "Served scores written to the prediction log",
            registry=self.registry,
        )
        self.predictions_dropped = Counter(
            "predelinq_predictions_log_dropped_total",
            "Served scores the prediction log dropped (queue full or database unavailable)",
            registry=self.registry,
        )
        self.predict_batch = Histogram(
            "predelinq_predict_batch_size",
            "Customers scored together by one /predict micro-batch",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.jobs = Counter(
            "predelinq_retrain_jobs_total",
            "Retrain jobs by outcome",
            ["status"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "predelinq_retrain_job_seconds",
            "Retrain job duration",
            registry=self.registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
        )
        self.new_customers = Gauge(
            "predelinq_new_customers",
            "New customers not yet trained on (counted at the scrape)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        # 1 for the version a worker serves, 0 for versions it served before; one series per
        # worker process (label pid) in multiprocess mode, so a reload in progress shows
        self.model = Gauge(
            "predelinq_model_info",
            "The model version this worker serves",
            ["version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.score_psi = Gauge(
            "predelinq_drift_score_psi",
            "The champion's score PSI against its training profile (GET /monitoring)",
            ["model_version"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.feature_psi = Gauge(
            "predelinq_drift_feature_psi",
            "Each monitored feature's PSI against the champion's training profile",
            ["feature"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._served: str | None = None

    def serving(self, version: str) -> None:
        """Record that this worker now serves ``version``."""
        if self._served is not None and self._served != version:
            self.model.labels(self._served).set(0)
        self.model.labels(version).set(1)
        self._served = version

    def drift(
        self, model_version: str, score_psi: float | None, features: dict[str, float]
    ) -> None:
        """Record a monitoring report's PSI: the score's (when there is one) and each
        feature's; earlier versions' and features' series are cleared."""
        self.score_psi.clear()
        self.feature_psi.clear()
        if score_psi is not None:
            self.score_psi.labels(model_version).set(score_psi)
        for name, value in features.items():
            self.feature_psi.labels(name).set(value)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: every worker's, in multiprocess mode."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)


REQUEST_ID_HEADER = b"x-request-id"


def request_id(request: Request) -> str:
    """The request's id (``RequestTelemetry`` gives each one), as the prediction log and the
    request log record it; a new one for a request that did not pass the middleware."""
    given = request.scope.get("state", {}).get("request_id")
    return given if isinstance(given, str) else str(uuid.uuid4())


class RequestTelemetry:
    """Pure ASGI middleware: latency by route into ``predelinq_request_seconds`` and one log
    record per request (method, route, path, status, milliseconds, request id). Headers and
    bodies are never logged, so no token can reach a log. (Starlette's
    ``BaseHTTPMiddleware`` did the same at several times the cost per request.)

    Each request gets an id (a uuid4, in ``scope["state"]``, read with ``request_id``), sent
    back as ``X-Request-ID``: the prediction log's ``request_id`` for the scores it served."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response
        identifier = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = identifier

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, identifier.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.telemetry.latency.labels(scope["method"], route, str(status)).observe(seconds)
            if log.isEnabledFor(logging.INFO):
                fields = {
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "request_id": identifier,
                }
                log.info("request", extra={"fields": fields})


class JsonLines(logging.Formatter):
    """Each record as one JSON object: time, level, event (the message) and the record's
    ``fields`` (``extra={"fields": {...}}``)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
