"""Explaining a model: feature importance, a calibration plot's bins and reason codes (pure
computation: arrays in, values out; no I/O).

Every explanation comes from XGBoost's own SHAP values (``pred_contribs=True``, computed by
:func:`predelinq.modeling.booster.contributions` from the trees :func:`~predelinq.modeling.
booster.predict` uses): per row, one contribution per feature on the log-odds scale and, last,
the bias; they add up to the row's margin, so a positive contribution raised the risk.

**What X must be.** One row per customer and date, one column per feature *of the model*, in
the model's order, NaN for missing: the training matrix for a fresh artifact (columns
``feature_names``, as in ``Trained``); for a loaded champion ``matrix[:, champion.columns]``
with ``champion.feature_names``, where ``matrix`` has today's feature set's columns (as
:func:`predelinq.serving.score.score` builds it). A booster that carries feature names is
checked against the names given.

**Threads.** ``threads`` builds the matrix; the SHAP values are computed on the booster's own
thread setting, which is never changed here, so a served booster shared by the API's threads
can be explained (see the thread policy in :mod:`predelinq.serving.score`).

**Importance** (:func:`importance`): mean |contribution| per feature over a seeded sample of at
most ``max_rows`` rows, largest first. **Calibration** (:func:`calibration`): rows sorted by
score and cut into equal-count bins (deciles by default) whose edges never split rows of
equal score. **Reason codes** (:func:`reason_codes`): a row's largest risk-raising
contributions, in the words of the feature registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from predelinq.features.declarations import FeatureSet
from predelinq.modeling.booster import contributions as booster_contributions

# Rows sampled for importance. SHAP values cost per row and tree: on the 10,000-customer
# bench database (62,688 rows, 78 features; depth 5, 66 trees, one thread, a busy machine)
# 5,000 rows took 1.1 s and every row 19 s; 2,000 seeded rows (5 seeds) gave the same top 10
# as every row, each of their values within 4%.
IMPORTANCE_ROWS = 2000


@dataclass(frozen=True)
class Decile:
    """One bin of a calibration plot."""

    mean_score: float  # mean predicted probability in the bin
    observed_rate: float  # share of positives in the bin
    rows: int

    def as_json(self) -> dict[str, float | int]:
        return {
            "mean_score": self.mean_score,
            "observed_rate": self.observed_rate,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Reason:
    """One reason code: a feature that raised a customer's risk, and by how much."""

    feature: str
    description: str  # the feature's declared description; its name when it has none
    value: float | None  # the customer's value (None: missing)
    contribution: float  # SHAP contribution on the log-odds scale, > 0

    def as_json(self) -> dict[str, str | float | None]:
        return {
            "feature": self.feature,
            "description": self.description,
            "value": self.value,
            "contribution": self.contribution,
        }


def contributions(booster: xgb.Booster, X: np.ndarray, *, threads: int) -> np.ndarray:
    """SHAP values of the rows of ``X`` (the model's columns, see the module docstring):
    shape (rows, features + 1), the last column the bias; each row adds up to its margin
    (log-odds) of the booster's score."""
    data = np.asarray(X, dtype=float)
    width = booster.num_features()
    if data.ndim != 2 or data.shape[1] != width:
        raise ValueError(f"X is {data.shape}; the model takes {width} columns")
    if not data.shape[0]:
        return np.empty((0, width + 1))
    # xgboost checks a matrix's names against the booster's; a booster without names
    # takes any (its own defaults here)
    names = booster.feature_names or [f"f{k}" for k in range(width)]
    return np.asarray(booster_contributions(booster, data, list(names), threads=threads))


def _check_names(booster: xgb.Booster, X: np.ndarray, names: list[str]) -> None:
    if np.ndim(X) != 2 or np.shape(X)[1] != len(names):
        raise ValueError(f"X is {np.shape(X)}; expected a column for each of {len(names)} names")
    own = booster.feature_names
    if own is not None and list(own) != list(names):
        raise ValueError("names differ from the booster's feature names (or their order)")


def importance(
    booster: xgb.Booster,
    X: np.ndarray,
    names: list[str],
    *,
    threads: int,
    max_rows: int = IMPORTANCE_ROWS,
    seed: int = 0,
) -> dict[str, float]:
    """Mean |SHAP contribution| (log-odds) per feature name, largest first (ties in column
    order), over the rows of ``X`` or, above ``max_rows``, a seeded random sample of
    ``max_rows`` of them (the cost grows with the rows: see :data:`IMPORTANCE_ROWS`). No
    rows: an empty dict."""
    _check_names(booster, X, names)
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, not {max_rows}")
    rows = np.shape(X)[0]
    if not rows:
        return {}
    data = np.asarray(X)
    if rows > max_rows:
        chosen = np.random.default_rng(seed).choice(rows, size=max_rows, replace=False)
        data = data[np.sort(chosen)]
    mean_abs = np.abs(contributions(booster, data, threads=threads)[:, :-1]).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    return {names[k]: float(mean_abs[k]) for k in order}


def calibration(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[Decile]:
    """Predicted against observed, by bin of score, lowest scores first.

    The rows are sorted by score and cut into ``bins`` bins of equal count (sizes differ by
    at most one), except that rows of equal score always share a bin: a cut that would split
    them moves down to where their score starts. So there are fewer bins when ties are long
    or there are fewer rows than bins (one row a bin), and none for no rows. ``labels`` are
    0/1; a score must be finite."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape}: one of each a row")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    if np.any((labels != 0) & (labels != 1)):
        raise ValueError("labels must be 0 or 1")
    rows = scores.size
    if not rows:
        return []
    order = np.argsort(scores, kind="stable")
    ordered, hits = scores[order], labels[order]
    nominal = np.arange(1, bins) * rows // bins  # where each bin after the first starts
    starts = np.searchsorted(ordered, ordered[nominal], side="left")  # start of its tie
    edges = np.unique(np.concatenate([[0], starts[starts > 0], [rows]]))
    return [
        Decile(
            mean_score=float(ordered[begin:end].mean()),
            observed_rate=float(hits[begin:end].mean()),
            rows=int(end - begin),
        )
        for begin, end in zip(edges[:-1], edges[1:], strict=True)
    ]


def reason_codes(
    booster: xgb.Booster,
    x: np.ndarray,
    names: list[str],
    features: FeatureSet,
    *,
    k: int = 4,
    threads: int = 1,
) -> list[Reason]:
    """The features that raised one row's risk most: positive contributions only, largest
    first (ties in column order), at most ``k``. ``x`` is one row of the model's columns
    (shape (features,) or (1, features); see the module docstring); ``features`` gives each
    name its description (a name it no longer declares is its own description)."""
    row = np.asarray(x, dtype=float)
    row = row.reshape(1, -1) if row.ndim == 1 else row
    if row.ndim != 2 or row.shape[0] != 1:
        raise ValueError(f"x is {np.shape(x)}: one row")
    _check_names(booster, row, names)
    shares = contributions(booster, row, threads=threads)[0, :-1]
    order = [j for j in np.argsort(-shares, kind="stable") if shares[j] > 0][: max(k, 0)]
    declared = features.by_name()
    reasons = []
    for j in order:
        name, value = names[j], float(row[0, j])
        feature = declared.get(name)
        reasons.append(
            Reason(
                feature=name,
                description=(feature.description if feature else "") or name,
                value=None if np.isnan(value) else value,
                contribution=float(shares[j]),
            )
        )
    return reasons
