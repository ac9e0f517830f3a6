"""``predelinq monitor`` and ``GET /monitoring``: the champion's drift, the realised
performance of every version on matured labels, and the triggers, as of one date.

Each figure is computed once: the drift report (:mod:`predelinq.monitoring.drift`), the
matured labels with their scores (:mod:`predelinq.monitoring.performance`), from which both
the per-month table and the champion's pooled figure come, and the trigger counts
(:func:`predelinq.monitoring.triggers.observe` without its own figures). The triggers are
then judged exactly as ``check`` judges them, cooldown included, on those figures.

The performance table covers the labels observed in the ``PERFORMANCE_DAYS`` before the
maturity cut-off (``as_of`` minus ``label_horizon_days``): a year of months, whatever the
age of the data, so its cost stays bounded.

The JSON keys ``as_of``, ``model_version``, ``score_psi``, ``features``,
``drifted_features``, ``performance`` and ``triggers`` are fixed for tooling; the others
(``population``, ``rows``, ``psi_threshold``, ``not_monitored``, ``excluded``, ``note``,
``realised``, ``performance_since``) say what the figures rest on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db.summary import data_as_of
from predelinq.monitoring.drift import DriftReport, drift_report
from predelinq.monitoring.performance import (
    PeriodPerformance,
    by_period,
    matured_scores,
    pooled_champion,
)
from predelinq.monitoring.triggers import Realised, TriggerResult, evaluate, observe

PERFORMANCE_DAYS = 365


@dataclass(frozen=True)
class MonitorReport:
    as_of: date
    drift: DriftReport
    performance: list[PeriodPerformance]  # per version and month
    realised: PeriodPerformance | None  # the champion's, pooled since it went into service
    performance_since: date
    triggers: list[TriggerResult]

    def as_json(self) -> dict[str, Any]:
        drift = self.drift.as_json()
        return {
            "as_of": self.as_of.isoformat(),
            "model_version": drift.pop("model_version"),
            "score_psi": drift.pop("score_psi"),
            "features": drift.pop("features"),
            "drifted_features": drift.pop("drifted_features"),
            "performance": [period.as_json() for period in self.performance],
            "triggers": [trigger.as_json() for trigger in self.triggers],
            **{key: value for key, value in drift.items() if key != "as_of"},
            "realised": None if self.realised is None else self.realised.as_json(),
            "performance_since": self.performance_since.isoformat(),
        }


def monitor(engine: Engine, settings: Settings, as_of: date | None = None) -> MonitorReport:
    """The monitoring report as of ``as_of`` (default: the data's own today,
    :func:`predelinq.db.summary.data_as_of`). Raises ``NoChampionError`` without a champion,
    ``FeatureMismatchError`` or ``ArtifactError`` when it cannot be scored."""
    if as_of is None:
        with engine.connect() as connection:
            as_of = data_as_of(connection)
    drift = drift_report(engine, settings, as_of)
    cutoff = as_of - timedelta(days=settings.label_horizon_days)
    since = cutoff - timedelta(days=PERFORMANCE_DAYS)
    scores = matured_scores(engine, settings, as_of, since=since)
    pooled = pooled_champion(scores)
    observed = replace(
        observe(engine, settings, as_of, figures=False),
        score_psi=drift.score_psi,
        feature_psi=drift.features if drift.score_psi is not None else None,
        realised=None if pooled is None else Realised.of(pooled),
    )
    return MonitorReport(
        as_of, drift, by_period(scores), pooled, since, evaluate(settings, observed)
    )


T = TypeVar("T")


class ReportCache(Generic[T]):
    """A report for a server (the monitoring report; the dashboard's drift history): computed
    in a background thread, kept for
    ``seconds`` or until ``key`` (the champion's version) changes, one computation at a time.

    ``current(key)`` never waits: it returns the report held (even an old one, while a new one
    is computed) and how old it is, or None before the first one is ready. A computation that
    failed is raised once to the next caller, and the one after that starts another."""

    def __init__(
        self,
        compute: Callable[[], T],
        seconds: float,
        on_report: Callable[[T], None] = lambda report: None,
    ):
        self._compute = compute
        self._seconds = seconds
        self._on_report = on_report
        self._lock = threading.Lock()
        self._report: T | None = None
        self._made: float = 0.0
        self._key: str | None = None
        self._error: Exception | None = None
        self._running: threading.Thread | None = None

    def current(self, key: str | None) -> tuple[T | None, float]:
        """The report held and its age in seconds; starts a new computation when there is
        none, it is older than ``seconds`` or was made for another ``key``."""
        with self._lock:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            age = time.monotonic() - self._made
            stale = self._report is None or age > self._seconds or self._key != key
            if stale and self._running is None:
                self._running = threading.Thread(
                    target=self._refresh, args=(key,), name="monitoring-report", daemon=True
                )
                self._running.start()
            return self._report, age

    def latest(self) -> T | None:
        """The report held, whatever its age; starts nothing."""
        with self._lock:
            return self._report

    def wait(self, timeout: float | None = None) -> None:
        """Until the computation under way (if any) ends: for tests and shutdown."""
        running = self._running
        if running is not None:
            running.join(timeout)

    def _refresh(self, key: str | None) -> None:
        try:
            report = self._compute()
        except Exception as error:  # kept for the next caller, which maps it to a status
            with self._lock:
                self._error, self._running = error, None
            return
        self._on_report(report)
        with self._lock:
            self._report, self._made, self._key = report, time.monotonic(), key
            self._running = None
