"""What one retrain produces (a RetrainResult) and the seams it accepts (Hooks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost

from predelinq.modeling.fit import Challenger, TrainingConfig
from predelinq.statuses import RunStatus


@dataclass
class RetrainResult:
    status: RunStatus
    reason: str
    model_version: str | None = None
    customers_trained: int = 0
    samples_trained: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # the estimate, see metrics_source
    metrics_std: dict[str, float] = field(default_factory=dict)  # over folds
    metrics_source: str = ""  # "cross_validation", "holdout" or "validation"
    parts: dict[str, Any] = field(default_factory=dict)  # rows fitted on, held out, ...
    champion_auc: float | None = None
    promoted: bool = False
    gate: str = ""
    gate_evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    selection_seed: int | None = None
    champion_problem: str | None = None  # the champion's artifact cannot be used (and why)
    seed_export_error: str | None = None  # promoted, but quick/quick_model.json is stale
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


@dataclass(frozen=True)
class Trained:
    """What the register stage needs: the artifact to store and how it was judged."""

    artifact: xgboost.Booster  # refit on every selected row
    challenger: Challenger
    config: TrainingConfig
    feature_names: list[str]
    customer_ids: np.ndarray  # of each row
    judged_against: str | None  # the champion the gate compared with
    # the training matrix (a column per feature name) and each row's observation date: the
    # version's reference profile is built from them (None: stored without a profile). On a
    # Dask cluster, a seeded sample of the rows (``scaleout/train.py``)
    X: np.ndarray | None = None
    observation_dates: np.ndarray | None = None
    y: np.ndarray | None = None  # each row's label: the calibration's (None: stored without)
