"""Automatic retraining: check -> select -> features -> train -> gate -> register -> log.

``check_and_retrain`` is the seed's ``check_and_retrain.py`` flow; ``retrain`` does one run
under the retraining lock. A run's artifact is written (atomically) before its database
changes, and those changes (version, log row, customers' training status, champion) are one
transaction: a crash at any point leaves the previous champion in service and no customer
marked as trained without a matching log row.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import (
    Connection,
    Engine,
    select,
)
from sqlalchemy import insert as insert_
from sqlalchemy.sql import Insert

from predelinq import __version__
from predelinq.config import Settings
from predelinq.db.schema import model_retraining_log, model_versions
from predelinq.features import compute_features
from predelinq.features.declarations import FeatureSet, configured_features, fingerprints
from predelinq.gate import judge_challenger
from predelinq.lock import retraining_lock
from predelinq.registry import (
    export_champion,
    register_version,
    save_artifact,
    set_champion,
    utc_now,
)
from predelinq.tracking import (
    mark_trained,
    read_labels,
    retraining_status,
    select_customers,
)
from predelinq.training import (
    TrainingConfig,
    TrainingError,
    TrainingResult,
    check_trainable,
    train_model,
)

RunStatus = Literal["success", "rejected", "failed"]


@dataclass
class RetrainResult:
    status: RunStatus
    reason: str
    model_version: str | None = None
    customers_trained: int = 0
    samples_trained: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    champion_auc: float | None = None
    promoted: bool = False
    gate: str = ""
    error: str | None = None
    selection_seed: int | None = None
    duration_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def as_response(self) -> dict[str, Any]:
        """The seed's trigger-response fields, plus ``promoted``."""
        return {
            "status": self.status,
            "customers_trained": self.customers_trained,
            "samples_trained": self.samples_trained,
            "auc": self.metrics.get("auc"),
            "model_version": self.model_version,
            "promoted": self.promoted,
        }


@dataclass
class Hooks:
    """Progress reporting (``on_stage`` is called as each stage starts) and a test seam
    before the commit (production code never sets ``before_commit``)."""

    before_commit: Callable[[], None] = lambda: None
    on_stage: Callable[[str], None] = lambda stage: None


# --- the run ---------------------------------------------------------------------------------


def retrain(
    engine: Engine,
    settings: Settings,
    *,
    reason: str = "Manual retrain",
    max_customers: int | Literal["all"] | None = None,
    force: bool = False,
    actor: str = "cli",
    hooks: Hooks | None = None,
) -> RetrainResult:
    """One retrain under the lock; raises ``RetrainingBusyError`` if another is running."""
    with retraining_lock(engine, lease_seconds=settings.lock_lease_seconds):
        return retrain_locked(
            engine,
            settings,
            reason=reason,
            max_customers=max_customers,
            force=force,
            actor=actor,
            hooks=hooks,
        )


def retrain_locked(
    engine: Engine,
    settings: Settings,
    *,
    reason: str = "Manual retrain",
    max_customers: int | Literal["all"] | None = None,
    force: bool = False,
    actor: str = "cli",
    hooks: Hooks | None = None,
) -> RetrainResult:
    """One retrain; the caller already holds the retraining lock (see ``retrain``)."""
    hooks = hooks or Hooks()
    max_customers = settings.max_customers if max_customers is None else max_customers
    started = time.perf_counter()
    seed = secrets.randbits(31)
    result = RetrainResult(status="failed", reason=reason, selection_seed=seed)
    stage = _Stopwatch(result.stage_seconds, hooks.on_stage)
    with stage("select"):
        selected = select_customers(engine, max_customers, seed=seed)
    result.customers_trained = selected.height
    config = TrainingConfig(threads=settings.threads or 2, seed=seed)
    feature_set = configured_features(settings)
    try:
        with stage("read_labels"):
            observations = read_labels(engine, selected)
        result.samples_trained = observations.height
        check_trainable(observations["label"].to_numpy(), config)  # before any feature work
        hooks.on_stage("features")
        features = compute_features(
            observations.select("customer_id", "observation_date"),
            settings=settings,
            features=feature_set,
            timings=result.stage_seconds,
        )
        X = features.select(feature_set.names).to_numpy()
        with stage("train"):
            trained = train_model(
                X,
                observations["label"].to_numpy(),
                customer_ids=observations["customer_id"].to_numpy(),
                observation_dates=observations["observation_date"].to_numpy(),
                feature_names=list(feature_set.names),
                config=config,
            )
    except TrainingError as error:
        result.error = str(error)
        result.duration_seconds = time.perf_counter() - started
        _log_failure(engine, result)
        return result
    result.metrics = trained.metrics
    with stage("evaluate"):
        # test rows of customers no earlier retrain included: the champion never saw them
        seen_before = observations.join(
            selected.select("customer_id", "trained"), on="customer_id", maintain_order="left"
        )
        unseen = trained.split.test[~seen_before["trained"].to_numpy()[trained.split.test]]
        decision = judge_challenger(
            engine,
            settings,
            trained.booster,
            trained.metrics["auc"],
            X[unseen],
            observations["label"].to_numpy()[unseen],
            feature_set,
            force=force,
        )
        result.promoted, result.champion_auc, result.gate = (
            decision.promoted,
            decision.champion_auc,
            decision.explanation,
        )
    with stage("register"):
        _register(
            engine, settings, trained, config, feature_set, selected, result, actor, hooks, started
        )
    return result


class _Stopwatch:
    def __init__(self, seconds: dict[str, float], on_stage: Callable[[str], None]):
        self.seconds = seconds
        self.on_stage = on_stage

    def __call__(self, name: str) -> _Stopwatch:
        self.name = name
        return self

    def __enter__(self) -> None:
        self.on_stage(self.name)
        self.started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.seconds[self.name] = time.perf_counter() - self.started


def unique_version_name(connection: Connection, when: datetime) -> str:
    """``auto_retrain_YYYYMMDD_HHMMSS`` as in the seed; a suffix keeps it unique in a second."""
    base = f"auto_retrain_{when:%Y%m%d_%H%M%S}"
    taken = set(
        connection.execute(
            select(model_versions.c.model_version).where(
                model_versions.c.model_version.startswith(base, autoescape=True)
            )
        ).scalars()
    )
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _register(
    engine: Engine,
    settings: Settings,
    trained: TrainingResult,
    config: TrainingConfig,
    feature_set: FeatureSet,
    selected: pl.DataFrame,
    result: RetrainResult,
    actor: str,
    hooks: Hooks,
    started: float,
) -> None:
    """Artifact first (atomic, on disk), then every database change in one transaction."""
    now = utc_now()
    with engine.connect() as connection:
        result.model_version = unique_version_name(connection, now)
    details = {
        "metrics": trained.metrics,
        "validation_metrics": trained.validation_metrics,
        "feature_names": trained.feature_names,
        "feature_set_fingerprint": feature_set.fingerprint(),
        "feature_fingerprints": fingerprints(feature_set),
        "params": config.params,
        "best_iteration": trained.best_iteration,
        "split": {
            "kind": trained.split.kind,
            "test_from": trained.split.test_from,
            "train": len(trained.split.train),
            "validation": len(trained.split.validation),
            "test": len(trained.split.test),
        },
        "customers_trained": result.customers_trained,
        "samples_trained": result.samples_trained,
        "selection_seed": result.selection_seed,
        "trigger_reason": result.reason,
        "gate": result.gate,
        "champion_auc": result.champion_auc,
        "package_version": __version__,
    }
    artifact = save_artifact(settings.model_dir, result.model_version, trained.booster, details)
    result.status = "success" if result.promoted else "rejected"
    hooks.before_commit()
    with engine.begin() as connection:
        register_version(
            connection,
            version=result.model_version,
            artifact=artifact,
            threshold=trained.threshold,
            auc=trained.metrics["auc"],
            details=details,
            created_at=now,
        )
        mark_trained(connection, selected, now)
        if result.promoted:
            set_champion(
                connection,
                to_version=result.model_version,
                action="retrain",
                actor=actor,
                reason=result.gate,
            )
        result.duration_seconds = time.perf_counter() - started
        connection.execute(_log_statement(result, now))
    if result.promoted:
        export_champion(settings.model_dir, artifact.relative_path, artifact.sha256)


def _log_statement(result: RetrainResult, now: datetime) -> Insert:
    metrics = result.metrics
    return insert_(model_retraining_log).values(
        retrain_date=now,
        customers_trained=result.customers_trained,
        samples_trained=result.samples_trained,
        auc_score=_finite(metrics.get("auc")),
        precision_score=_finite(metrics.get("precision")),
        recall_score=_finite(metrics.get("recall")),
        f1_score=_finite(metrics.get("f1")),
        model_version=result.model_version,
        trigger_reason=result.reason,
        training_duration_seconds=result.duration_seconds,
        status=result.status,
        promoted=result.promoted,
        error=result.error,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _log_failure(engine: Engine, result: RetrainResult) -> None:
    """A failed attempt is logged and changes no customer's status."""
    with engine.begin() as connection:
        connection.execute(_log_statement(result, utc_now()))


# --- the seed's check ------------------------------------------------------------------------


@dataclass
class CheckOutcome:
    status: dict[str, Any]  # as counted before any retrain
    result: RetrainResult | None


def check_and_retrain(
    engine: Engine, settings: Settings, *, actor: str = "check", hooks: Hooks | None = None
) -> CheckOutcome:
    """Count new customers; retrain when the threshold is reached."""
    status = retraining_status(engine, settings)
    if not status["retraining_needed"]:
        return CheckOutcome(status, None)
    result = retrain(engine, settings, reason=status["reason"], actor=actor, hooks=hooks)
    return CheckOutcome(status, result)
