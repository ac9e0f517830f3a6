"""Prometheus metrics, one registry per app (so tests and workers do not share state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


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
