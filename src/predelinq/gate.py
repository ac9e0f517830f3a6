"""The quality gate: a new model replaces the champion only if it is at least as good.

The first model is promoted, and so is a model that replaces a champion whose features no
longer exist or are declared differently (it could not be served either). After that the
challenger needs AUC >= the champion's AUC minus ``gate_tolerance`` on rows neither model
has learnt from: the new run's test rows of customers that no earlier retrain included (so
the champion cannot have seen them). Scoring the champion on customers it was trained on
would flatter it and block every retrain. When
too few such rows remain (fewer than ``MIN_UNSEEN_ROWS`` or ``MIN_UNSEEN_POSITIVES``), the
two held-out test AUCs recorded at training time are compared instead. ``force`` promotes
anyway and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.features.declarations import FeatureMismatchError, FeatureSet, model_columns
from predelinq.registry import current_champion, get_version, load_booster
from predelinq.training import evaluate, predict


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    champion_auc: float | None
    explanation: str


MIN_UNSEEN_ROWS = 200
MIN_UNSEEN_POSITIVES = 20


def judge_challenger(
    engine: Engine,
    settings: Settings,
    challenger: xgboost.Booster,
    challenger_test_auc: float,
    X_unseen: np.ndarray,
    y_unseen: np.ndarray,
    features: FeatureSet,
    *,
    force: bool = False,
) -> GateDecision:
    """Decide whether the challenger replaces the champion (see the module docstring)."""
    with engine.connect() as connection:
        champion = current_champion(connection)
        row = get_version(connection, champion) if champion else None
    if row is None or champion is None:
        return GateDecision(True, None, "first model: promoted")
    try:
        columns = model_columns(champion, row["details"], features)
    except FeatureMismatchError as error:
        # the champion cannot be served with today's features either: judged as a first model
        return GateDecision(True, None, f"champion not comparable, promoted: {error}")
    booster = load_booster(settings.model_dir, row["artifact_path"], row["sha256"])
    X_champion = X_unseen[:, columns]  # the champion's own features, in its order
    threads = settings.threads or 2
    if len(y_unseen) >= MIN_UNSEEN_ROWS and int(y_unseen.sum()) >= MIN_UNSEEN_POSITIVES:
        basis = f"{len(y_unseen)} test rows unseen by both"
        champion_auc = evaluate(y_unseen, predict(booster, X_champion, threads=threads), 0.5)["auc"]
        challenger_auc = evaluate(y_unseen, predict(challenger, X_unseen, threads=threads), 0.5)[
            "auc"
        ]
    else:
        basis = "recorded held-out test AUCs (too few unseen rows)"
        champion_auc, challenger_auc = float(row["auc_score"]), challenger_test_auc
    floor = champion_auc - settings.gate_tolerance
    passed = bool(challenger_auc >= floor)
    explanation = (
        f"gate {'passed' if passed else 'failed'} on {basis}: new AUC {challenger_auc:.4f} vs "
        f"champion {champion} {champion_auc:.4f} - tolerance {settings.gate_tolerance}"
    )
    if force and not passed:
        explanation += "; promoted by --force"
    return GateDecision(passed or force, champion_auc, explanation)
