"""The quality gate: a new model replaces the champion only if it is at least as good.

Both models are scored on the new run's test part (customers the new model never saw). The
first model is promoted; after that the challenger needs test AUC >= champion AUC minus
``gate_tolerance``. ``force`` promotes anyway and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.features import FEATURE_NAMES
from predelinq.registry import current_champion, get_version, load_booster
from predelinq.training import evaluate, predict


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    champion_auc: float | None
    explanation: str


def judge_challenger(
    engine: Engine,
    settings: Settings,
    challenger_auc: float,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    force: bool = False,
) -> GateDecision:
    """Compare the challenger's test AUC with the champion's on the same test rows."""
    with engine.connect() as connection:
        champion = current_champion(connection)
        row = get_version(connection, champion) if champion else None
    if row is None:
        return GateDecision(True, None, "first model: promoted")
    booster = load_booster(settings.model_dir, row["artifact_path"], row["sha256"])
    if list(booster.feature_names or []) != list(FEATURE_NAMES):
        why = f"champion {champion} uses other features: cannot compare"
        return GateDecision(force, None, why + ("; promoted by --force" if force else ""))
    scores = predict(booster, X_test, threads=settings.threads or 2)
    champion_auc = evaluate(y_test, scores, row["threshold"])["auc"]
    floor = champion_auc - settings.gate_tolerance
    passed = bool(challenger_auc >= floor)
    explanation = (
        f"gate {'passed' if passed else 'failed'}: new AUC {challenger_auc:.4f} vs champion "
        f"{champion} {champion_auc:.4f} - tolerance {settings.gate_tolerance} = {floor:.4f}"
    )
    if force and not passed:
        explanation += "; promoted by --force"
    return GateDecision(passed or force, champion_auc, explanation)
