"""The TOML-only tables of the settings: ``[training]``, ``[monitoring]`` and ``[triggers]``
(with one sub-table per trigger). ``predelinq.config.Settings`` holds one of each."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainingSettings(BaseModel):
    """The `[training]` table (TOML only); `[training.params]` overrides XGBoost parameters."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "XGBoost parameters merged over the defaults (eta 0.1, min_child_weight 1, "
            "subsample 0.8, colsample_bytree 0.8, max_bin 64, hist; max_depth 3 when "
            "cross-validating, 5 above cv_max_rows)."
        ),
    )
    num_boost_round: int = Field(default=1000, ge=1, description="Most trees a model grows.")
    early_stopping_rounds: int = Field(
        default=30, ge=1, description="Stop after this many rounds without a better AUC."
    )
    cv_max_rows: int = Field(
        default=5000,
        ge=0,
        description="Up to this many rows to fit: cross-validation; above: a validation part.",
    )
    folds: int = Field(default=5, ge=2, le=20, description="Cross-validation folds.")
    validation_share: float = Field(
        default=0.2, gt=0, lt=1, description="Customers in the validation part (large data)."
    )
    holdout_share: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Rows held out for the gate: the newest customers no model has seen.",
    )


class MonitoringSettings(BaseModel):
    """The `[monitoring]` table (TOML only): drift and realised performance."""

    model_config = ConfigDict(extra="forbid")

    population: Literal["customers", "predictions"] = Field(
        default="customers",
        description=(
            "Drift population: `customers` (every customer first seen before the date, with "
            "point-in-time features) or `predictions` (the customers scored in the prediction "
            "log's recent window, re-read as of the date)."
        ),
    )
    window_days: int = Field(
        default=30, ge=1, description="The prediction log's recent window, in days."
    )
    bins: int = Field(default=10, ge=2, le=100, description="Quantile bins of a reference profile.")
    max_customers: int = Field(
        default=10_000,
        ge=1_000,
        description=(
            "Drift compares a seeded random sample of at most this many customers (a PSI's "
            "sampling error with 10 bins is about 0.001 at 10,000: far below 0.1)."
        ),
    )
    cache_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "GET /monitoring serves its report for this long (or until the champion changes) "
            "before computing it again in the background."
        ),
    )
    psi_threshold: float = Field(
        default=0.25, gt=0, description="A PSI at or above this is drift (score or feature)."
    )


class NewCustomersTrigger(BaseModel):
    """The seed's rule; its threshold is the `new_customer_threshold` setting."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class NewLabelsTrigger(BaseModel):
    """Labelled rows no retrain has used: every label of an untrained customer, and labels
    stored or changed after their customer's last retrain."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    threshold: int = Field(default=500, ge=1, description="Fire at this many unused labels.")


class DriftTrigger(BaseModel):
    """The champion's population has moved from its training rows (PSI, as `monitor`)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    score_psi: float = Field(default=0.25, gt=0, description="Fire at this score PSI.")
    features: int = Field(
        default=3,
        ge=1,
        description="Or at this many features with a PSI at or over monitoring.psi_threshold.",
    )


class PerformanceTrigger(BaseModel):
    """The champion's realised AUC on matured labels is below expected."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    tolerance: float = Field(
        default=0.05,
        ge=0,
        description=(
            "Fire when the realised AUC's 95% upper bound is below the AUC expected at "
            "training minus this."
        ),
    )
    min_rows: int = Field(
        default=200, ge=1, description="Judge only on at least this many matured rows."
    )


class MaxAgeTrigger(BaseModel):
    """The champion is old (counted from its registration, on the wall clock)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    days: int = Field(default=90, ge=1, description="Fire when the champion is this many days old.")


class TriggerSettings(BaseModel):
    """The `[triggers]` table (TOML only): what makes `check` retrain."""

    model_config = ConfigDict(extra="forbid")

    cooldown_hours: float = Field(
        default=24.0,
        ge=0,
        description=(
            "After a retrain, the triggers other than new_customers wait this long before "
            "they may start another."
        ),
    )
    new_customers: NewCustomersTrigger = Field(default_factory=NewCustomersTrigger)
    new_labels: NewLabelsTrigger = Field(default_factory=NewLabelsTrigger)
    drift: DriftTrigger = Field(default_factory=DriftTrigger)
    performance: PerformanceTrigger = Field(default_factory=PerformanceTrigger)
    max_age: MaxAgeTrigger = Field(default_factory=MaxAgeTrigger)
