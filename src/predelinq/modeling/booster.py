"""Using a fitted booster: scores and per-feature contributions."""

from __future__ import annotations

import numpy as np
import xgboost as xgb


def predict(booster: xgb.Booster, X: np.ndarray, *, threads: int | None = 2) -> np.ndarray:
    """Probabilities for the rows of ``X`` (NaN = missing), trees up to ``best_iteration``.
    ``threads=None`` keeps the booster's own setting (a served model shared by threads)."""
    if threads is not None:
        booster.set_param("nthread", str(threads))
    data = np.asarray(X, dtype=np.float32)
    rounds = best_rounds(booster)
    return np.asarray(booster.inplace_predict(data, iteration_range=rounds, missing=np.nan))


def contributions(
    booster: xgb.Booster, X: np.ndarray, feature_names: list[str], *, threads: int
) -> np.ndarray:
    """Each row's per-feature contributions (SHAP values) and, last, the bias: from the same
    trees as :func:`predict`, so a row's values add up to the margin of its score."""
    matrix = xgb.DMatrix(X, feature_names=feature_names, missing=np.nan, nthread=threads)
    return booster.predict(matrix, pred_contribs=True, iteration_range=best_rounds(booster))


def best_rounds(booster: xgb.Booster) -> tuple[int, int]:
    """Trees up to ``best_iteration`` when early stopping chose one, else all (0, 0)."""
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)
