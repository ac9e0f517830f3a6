"""Model training: split, fit with early stopping, pick a threshold, measure (pure computation).

Arrays in, booster and metrics out; no I/O. One row is one observation (``customer_id``,
``observation_date``) with a 0/1 label and numeric features (NaN = missing).

**Split rule** (no customer is ever in two parts; deterministic for a given ``config.seed``):

* *Out-of-time*, when the rows span at least 3 distinct observation dates. The *test dates*
  are whole dates taken from the latest backwards until they hold at least
  ``test_share / test_customer_share`` of the rows, leaving at least 2 dates before them.
  ``test_from`` is the first test date. The customers seen on the test dates are split
  (grouped by customer, stratified on their highest label there): a ``test_customer_share``
  of them form the test part with their rows on the test dates (their earlier rows are
  dropped); the others keep only their rows before ``test_from`` (their rows on the test
  dates are dropped). So the test part holds about ``test_share`` of the rows, every test
  row is later than every training row, and no customer is on both sides. With
  ``test_customer_share=1.0`` every customer seen on the test dates goes to the test part.
  (Holding out all of them would leave almost nothing to train on when customers are
  observed every month, as in :mod:`predelinq.synth`.)
* *Grouped*, otherwise: the customers are split (stratified on each customer's highest
  label) so that about ``test_share`` of them form the test part.
* *Validation*: the same customer-grouped, label-stratified split of the remaining rows takes
  about ``validation_share`` of their customers. It drives early stopping and the threshold.

A part that is empty or holds a single class raises :class:`TrainingError`.

**Early stopping**: ``xgboost.train`` stops when the validation metric (``eval_metric``,
default AUC, the last one if several) has not improved for ``early_stopping_rounds``
rounds; the booster keeps the extra rounds, and :func:`predict` uses trees up to
``best_iteration`` only.

**Threshold rule**: a row is flagged when ``score >= threshold``. The threshold is the
validation score that maximises F1 = 2TP / (2TP + FP + FN); ties go to the highest one.

**Metrics** (:func:`evaluate`): ROC AUC, PR AUC (average precision), precision, recall and F1
at the threshold (0 when undefined), Brier score, KS = max |TPR - FPR| over the ROC curve,
rows, positives, positive rate. AUC, PR AUC and KS are NaN when only one class is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import xgboost as xgb


class TrainingError(Exception):
    """The data cannot train a model: too few labels, one class only, an empty split part."""


def default_params() -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "eta": 0.05,
        "max_depth": 4,
        "min_child_weight": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
    }


@dataclass(frozen=True)
class TrainingConfig:
    params: dict[str, Any] = field(default_factory=default_params)
    num_boost_round: int = 600
    early_stopping_rounds: int = 40
    threads: int = 2
    seed: int = 0
    test_share: float = 0.2  # of the rows (approximately: whole dates, whole customers)
    validation_share: float = 0.2  # of what remains after the test part
    min_labels: int = 100  # fewer labelled rows -> TrainingError
    min_positives: int = 10  # fewer positives (or negatives) -> TrainingError
    test_customer_share: float = 0.5  # out-of-time: customers on the test dates held out

    def __post_init__(self) -> None:
        shares = (self.test_share, self.validation_share, self.test_customer_share)
        if not (0 < self.test_share < 1 and 0 < self.validation_share < 1):
            raise ValueError(f"test_share and validation_share must be in (0, 1): {shares}")
        if not 0 < self.test_customer_share <= 1:
            raise ValueError(f"test_customer_share must be in (0, 1]: {shares}")


@dataclass(frozen=True)
class Split:
    kind: str  # "out_of_time" or "grouped"
    train: np.ndarray  # row positions (int64), sorted
    validation: np.ndarray
    test: np.ndarray
    test_from: date | None  # out_of_time: first observation date of the test part


def check_trainable(labels: np.ndarray, config: TrainingConfig) -> None:
    """Raise :class:`TrainingError` unless ``labels`` are 0/1 with enough of each class."""
    labels = np.asarray(labels, dtype=float)
    other = int(np.count_nonzero((labels != 0) & (labels != 1)))
    if other:
        raise TrainingError(f"labels must be 0 or 1: {other} of {labels.size} rows are not")
    rows, positives = labels.size, int(labels.sum())
    negatives = rows - positives
    if rows < config.min_labels:
        raise TrainingError(f"too few labelled rows: {rows} (need at least {config.min_labels})")
    if positives == 0 or negatives == 0:
        raise TrainingError(f"labels have only one class ({positives} positives in {rows} rows)")
    if min(positives, negatives) < config.min_positives:
        raise TrainingError(
            f"too few of one class: {positives} positives and {negatives} negatives in "
            f"{rows} rows (need at least {config.min_positives} of each)"
        )


def _check_part(name: str, labels: np.ndarray) -> None:
    positives = int(np.sum(labels))
    if labels.size == 0:
        raise TrainingError(f"{name} part is empty (0 rows)")
    if positives in (0, labels.size):
        raise TrainingError(
            f"{name} part has only one class ({positives} positives in {labels.size} rows)"
        )


def _grouped_split(
    customer_ids: np.ndarray, labels: np.ndarray, rows: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` by customer, stratified on each customer's highest label.

    Returns (kept rows, held-out rows), sorted; about ``share`` of the customers are held out.
    """
    customers, inverse = np.unique(customer_ids[rows], return_inverse=True)
    worst = np.zeros(customers.size, dtype=np.int64)
    np.maximum.at(worst, inverse, labels[rows].astype(np.int64))
    held = _stratified_pick(worst, share, seed)
    if held is None:
        raise TrainingError(
            f"cannot split {customers.size} customers ({int(worst.sum())} with a positive "
            f"label) into {1 - share:.0%}/{share:.0%} with both classes on each side"
        )
    is_held = np.isin(inverse, held)
    return np.sort(rows[~is_held]), np.sort(rows[is_held])


def _stratified_pick(strata: np.ndarray, share: float, seed: int) -> np.ndarray | None:
    """About ``share`` of each stratum's positions, at random; None if a stratum cannot be
    split (it would end up on one side only)."""
    rng = np.random.default_rng(seed)
    picked = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        count = int(round(share * members.size))
        if count == 0 or count == members.size:
            return None
        picked.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(picked))


def _test_dates_start(dates: np.ndarray, share: float) -> Any:
    """First of the latest whole dates that hold at least ``share`` of the rows (>= 2 stay)."""
    distinct, counts = np.unique(dates, return_counts=True)
    latest_first = np.cumsum(counts[::-1])
    taken = int(np.searchsorted(latest_first, share * dates.size)) + 1
    return distinct[distinct.size - min(taken, distinct.size - 2)]


def _as_date(value: Any) -> date:
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def split_observations(
    customer_ids: np.ndarray,
    observation_dates: np.ndarray,
    labels: np.ndarray,
    *,
    config: TrainingConfig,
) -> Split:
    """Split rows into train, validation and test parts (see the module docstring)."""
    customer_ids, dates = np.asarray(customer_ids), np.asarray(observation_dates)
    labels = np.asarray(labels)
    if not customer_ids.shape == dates.shape == labels.shape or labels.ndim != 1:
        raise ValueError("customer_ids, observation_dates and labels must be 1-d, same length")
    # integer codes: numpy's set operations on object arrays (string ids) compare every pair,
    # which took minutes at 600k rows
    customer_ids = np.unique(customer_ids, return_inverse=True)[1].reshape(-1)
    everything = np.arange(labels.size, dtype=np.int64)
    test_from = None
    if np.unique(dates).size >= 3:
        kind, share = "out_of_time", config.test_share / config.test_customer_share
        test_from = _test_dates_start(dates, min(share, 1.0))
        late = dates >= test_from
        test = everything[late]
        if config.test_customer_share < 1:
            seed, held_share = config.seed, config.test_customer_share
            _, test = _grouped_split(customer_ids, labels, test, held_share, seed)
        _check_part("test", labels[test])
        rest = everything[~late & ~np.isin(customer_ids, customer_ids[test])]
    else:
        kind = "grouped"
        rest, test = _grouped_split(
            customer_ids, labels, everything, config.test_share, config.seed
        )
        _check_part("test", labels[test])
    _check_part("train and validation", labels[rest])
    train, validation = _grouped_split(
        customer_ids, labels, rest, config.validation_share, config.seed + 1
    )
    _check_part("validation", labels[validation])
    _check_part("train", labels[train])
    from_date = None if test_from is None else _as_date(test_from)
    return Split(kind, train, validation, test, from_date)


def choose_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The score maximising F1 when flagging ``score >= threshold``; ties -> the highest."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if y_score.size == 0 or y_true.shape != y_score.shape:
        raise ValueError("y_true and y_score must be non-empty and of the same shape")
    order = np.argsort(-y_score, kind="stable")
    scores, hits = y_score[order], y_true[order].astype(np.int64)
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # last row of each score
    tp = np.cumsum(hits)[last]
    fp = last + 1 - tp
    fn = hits.sum() - tp
    f1 = 2 * tp / (2 * tp + fp + fn)  # the denominator is > 0: each candidate flags a row
    return float(scores[last][int(np.argmax(f1))])  # argmax: first = highest score


def evaluate(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of ``y_score`` against ``y_true``, flagging ``score >= threshold``."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=float)
    flagged = (y_score >= threshold).astype(np.int64)
    positives = int(y_true.sum())
    both = 0 < positives < y_true.size
    nan = float("nan")
    true_positives = int((flagged & y_true).sum())
    flagged_count = int(flagged.sum())
    precision = true_positives / flagged_count if flagged_count else 0.0
    recall = true_positives / positives if positives else 0.0
    f1 = 2 * true_positives / (flagged_count + positives) if flagged_count + positives else 0.0
    return {
        "auc": _auc(y_true, y_score) if both else nan,
        "pr_auc": _average_precision(y_true, y_score) if both else nan,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "brier": float(np.mean((y_score - y_true) ** 2)) if y_true.size else nan,
        "ks": _ks(y_true, y_score) if both else nan,
        "rows": float(y_true.size),
        "positives": float(positives),
        "positive_rate": positives / y_true.size if y_true.size else nan,
    }


# The metrics are computed with numpy rather than imported from scikit-learn: with
# scikit-learn installed, ``import xgboost`` imports it too, which cost 0.8 s of every CLI
# start (measured). tests/test_training.py checks them against scikit-learn.


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted half."""
    order = np.argsort(y_score, kind="mergesort")
    _, first, counts = np.unique(y_score[order], return_index=True, return_counts=True)
    ranks = np.empty(y_score.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    rank_sum = ranks[y_true == 1].sum() - positives * (positives + 1) / 2
    return float(rank_sum / (positives * negatives))


def _ranking_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives flagged at each distinct score, highest score first."""
    order = np.argsort(-y_score, kind="mergesort")
    ends = np.r_[np.flatnonzero(np.diff(y_score[order])), y_score.size - 1]
    true_positives = np.cumsum(y_true[order])[ends]
    return true_positives, ends + 1 - true_positives


def _average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Precision at each distinct threshold, weighted by the recall it adds."""
    true_positives, false_positives = _ranking_curve(y_true, y_score)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ks(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the ROC curve's TPR and FPR."""
    true_positives, false_positives = _ranking_curve(y_true, y_score)
    tpr = true_positives / true_positives[-1]
    fpr = false_positives / false_positives[-1]
    return float(np.max(np.abs(tpr - fpr)))


@dataclass(frozen=True)
class TrainingResult:
    booster: xgb.Booster
    threshold: float
    split: Split
    metrics: dict[str, float]  # on the test part
    validation_metrics: dict[str, float]
    best_iteration: int
    feature_names: list[str]


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    *,
    customer_ids: np.ndarray,
    observation_dates: np.ndarray,
    feature_names: list[str],
    config: TrainingConfig = TrainingConfig(),
) -> TrainingResult:
    """Check, split, fit with early stopping on validation, choose the threshold, measure."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape != (y.size, len(feature_names)):
        raise ValueError(f"X is {X.shape}; expected ({y.size}, {len(feature_names)})")
    check_trainable(y, config)
    split = split_observations(customer_ids, observation_dates, y, config=config)

    def matrix(rows: np.ndarray) -> xgb.DMatrix:
        names = list(feature_names)
        return xgb.DMatrix(
            X[rows], label=y[rows], missing=np.nan, feature_names=names, nthread=config.threads
        )

    params = {**config.params, "nthread": config.threads, "seed": config.seed}
    booster = xgb.train(
        params,
        matrix(split.train),
        num_boost_round=config.num_boost_round,
        evals=[(matrix(split.validation), "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    valid_scores = predict(booster, X[split.validation], threads=config.threads)
    threshold = choose_threshold(y[split.validation], valid_scores)
    test_scores = predict(booster, X[split.test], threads=config.threads)
    return TrainingResult(
        booster=booster,
        threshold=threshold,
        split=split,
        metrics=evaluate(y[split.test], test_scores, threshold),
        validation_metrics=evaluate(y[split.validation], valid_scores, threshold),
        best_iteration=int(booster.best_iteration),
        feature_names=list(feature_names),
    )


def predict(booster: xgb.Booster, X: np.ndarray, *, threads: int | None = 2) -> np.ndarray:
    """Probabilities for the rows of ``X`` (NaN = missing), trees up to ``best_iteration``.
    ``threads=None`` keeps the booster's own setting (a served model shared by threads)."""
    if threads is not None:
        booster.set_param("nthread", str(threads))
    data = np.asarray(X, dtype=np.float32)
    rounds = _best_rounds(booster)
    return np.asarray(booster.inplace_predict(data, iteration_range=rounds, missing=np.nan))


def contributions(
    booster: xgb.Booster, X: np.ndarray, feature_names: list[str], *, threads: int
) -> np.ndarray:
    """Each row's per-feature contributions (SHAP values) and, last, the bias: from the same
    trees as :func:`predict`, so a row's values add up to the margin of its score."""
    matrix = xgb.DMatrix(X, feature_names=feature_names, missing=np.nan, nthread=threads)
    return booster.predict(matrix, pred_contribs=True, iteration_range=_best_rounds(booster))


def _best_rounds(booster: xgb.Booster) -> tuple[int, int]:
    """Trees up to ``best_iteration`` when early stopping chose one, else all (0, 0)."""
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)
