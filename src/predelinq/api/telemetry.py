"""Prometheus metrics, one registry per app (so tests and workers do not share state), and
the request middleware that times every request and logs it (as one JSON line on stdout
with ``JsonLines``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("predelinq.api")


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
            "predelinq_new_customers", "New customers not yet trained on", registry=self.registry
        )
        self.model = Info(
            "predelinq_model", "The model version this worker serves", registry=self.registry
        )


class RequestTelemetry:
    """Pure ASGI middleware: latency by route into ``predelinq_request_seconds`` and one log
    record per request (method, route, path, status, milliseconds). Headers and bodies are
    never logged, so no token can reach a log. (Starlette's ``BaseHTTPMiddleware`` did the
    same at several times the cost per request.)"""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
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
