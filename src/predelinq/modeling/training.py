"""Model training: hold out, cross-validate or validate, choose rounds and threshold, refit
(pure computation: arrays in, boosters and metrics out; no I/O).

One row is one observation (``customer_id``, ``observation_date``) with a 0/1 label and
numeric features (NaN = missing). No customer is ever on two sides of a split, and no row is
dropped: every row is fitted on, validates or is held out, and every part is recorded.

**Holdout** (:func:`holdout_rows`): the newest customers among those *eligible* (the caller
passes customers no model in service has seen), whole customers taken until they hold
``holdout_share`` of all rows. Customers are ordered by their latest observation date, then
their first, newest first; ties in seeded random order. The challenger is fitted without them
until the gate has compared it with the champion on exactly these rows.

**Fit** (:func:`fit_challenger`) on the other rows, by how many there are:

* *Cross-validation*, up to ``cv_max_rows`` rows (small data, where one split would leave too
  little to learn from or to measure on): ``folds`` customer-grouped folds, each a contiguous
  block of time (customers in order of their latest, then first observation date, dealt into
  blocks within each class of their highest label, so each fold holds its share of positive
  customers). ``xgboost.cv`` grows all folds together and stops when the mean validation AUC
  has not improved for ``early_stopping_rounds`` rounds; the best round count is used. Every
  fit row gets an out-of-fold score from the model that did not learn its fold, at the round
  count best on the *other* folds (so that the fold's own noise does not choose it); the
  metrics are the mean and standard deviation over folds. The blocks are not
  forward-chaining: with a few hundred rows the early folds would have too little to learn
  from, so a fold may learn from later blocks; the holdout is the strictly newest test. The
  *decision model* is then fitted on all fit rows with the chosen round count.
* *Validation*, above that: a customer-grouped, label-stratified ``validation_share`` of the
  fit customers drives early stopping; the *decision model* is the model of the other fit
  rows, cut at its best round. The metrics are measured on the holdout (rows no fit has
  touched), or on the validation part when the holdout is empty.

The decision model scores the holdout. The **threshold** is the score maximising
F1 = 2TP / (2TP + FP + FN) when flagging ``score >= threshold`` (ties go to the highest), on
the out-of-fold scores or the validation part. After cross-validation, :func:`train_rounds`
refits the artifact on every row with the chosen round count; after a validation part the
artifact is the decision model (a refit of hundreds of thousands of rows would cost as much
again for a fifth more rows). Either way it holds exactly the trees it uses.

**Metrics** (:func:`evaluate`): ROC AUC, PR AUC (average precision), precision, recall and F1
at the threshold (0 when undefined), Brier score, KS = max |TPR - FPR| over the ROC curve,
rows, positives, positive rate. AUC, PR AUC and KS are NaN when only one class is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xgboost as xgb


class TrainingError(Exception):
    """The data cannot train a model: too few labels, one class only, a fold without both."""


def default_params() -> dict[str, Any]:
    """XGBoost parameters that hold from a few hundred rows up: leaves down to one positive's
    worth of weight (``min_child_weight`` 1: with 20 positives, larger values forbid every
    split and give a constant score) and 64 bins (more bins than a few thousand rows can fill
    only cost time). ``max_depth`` is not here: unless set, it is :data:`DEPTH` by method."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "eta": 0.1,
        "min_child_weight": 1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "max_bin": 64,
        "tree_method": "hist",
    }


Method = Literal["cross_validation", "validation"]


@dataclass(frozen=True)
class TrainingConfig:
    params: dict[str, Any] = field(default_factory=default_params)
    num_boost_round: int = 1000
    early_stopping_rounds: int = 30
    threads: int = 2
    seed: int = 0
    cv_max_rows: int = 5000  # fit rows up to this: cross-validation; above: a validation part
    folds: int = 5
    validation_share: float = 0.2  # of the fit customers, above cv_max_rows
    holdout_share: float = 0.2  # of all rows, the newest eligible customers
    min_labels: int = 100  # fewer labelled rows -> TrainingError
    min_positives: int = 10  # fewer positives (or negatives) -> TrainingError

    def __post_init__(self) -> None:
        shares = (self.holdout_share, self.validation_share)
        if not (0 <= self.holdout_share < 1 and 0 < self.validation_share < 1):
            raise ValueError(f"holdout_share in [0, 1), validation_share in (0, 1): {shares}")
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, not {self.folds}")


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


# --- who goes where --------------------------------------------------------------------------


def customer_codes(customer_ids: np.ndarray) -> np.ndarray:
    """Integer codes 0..n-1 of the customer ids, in sorted id order.

    numpy's set operations on object arrays (string ids) compare every pair, which took
    minutes at 600k rows; codes keep every grouping below fast."""
    return np.unique(np.asarray(customer_ids), return_inverse=True)[1].reshape(-1)


def _per_customer(codes: np.ndarray, dates: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Each customer's rows, first and latest date (as day numbers) and highest label."""
    count = int(codes.max()) + 1 if codes.size else 0
    days = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    latest = np.full(count, np.iinfo(np.int64).min)
    first = np.full(count, np.iinfo(np.int64).max)
    worst = np.zeros(count, dtype=np.int64)
    np.maximum.at(latest, codes, days)
    np.minimum.at(first, codes, days)
    np.maximum.at(worst, codes, np.asarray(labels).astype(np.int64))
    rows = np.bincount(codes, minlength=count)
    return {"rows": rows, "latest": latest, "first": first, "worst": worst}


def _time_order(customers: np.ndarray, facts: dict[str, Any], seed: int) -> np.ndarray:
    """``customers`` oldest first: by latest, then first observation date; ties at random."""
    shuffled = np.random.default_rng(seed).permutation(customers)
    keys = (facts["first"][shuffled], facts["latest"][shuffled])
    return shuffled[np.lexsort(keys)]


def holdout_rows(
    customer_ids: np.ndarray,
    observation_dates: np.ndarray,
    labels: np.ndarray,
    *,
    eligible: np.ndarray,
    share: float,
    seed: int,
) -> np.ndarray:
    """Rows of the newest eligible customers, whole customers until ``share`` of all rows
    (see the module docstring). ``eligible`` is a per-row mask; sorted positions out."""
    codes = customer_codes(customer_ids)
    facts = _per_customer(codes, observation_dates, labels)
    candidates = np.unique(codes[np.asarray(eligible, dtype=bool)])
    newest_first = _time_order(candidates, facts, seed)[::-1]
    taken = np.cumsum(facts["rows"][newest_first])
    count = int(np.searchsorted(taken, share * codes.size)) + 1 if share > 0 else 0
    held = np.zeros(facts["rows"].size, dtype=bool)
    held[newest_first[:count]] = True
    return np.flatnonzero(held[codes])


def _time_blocked_folds(
    codes: np.ndarray, dates: np.ndarray, labels: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Each row's fold (0..folds-1): customers in time order, dealt into contiguous blocks
    within each class of their highest label."""
    facts = _per_customer(codes, dates, labels)
    present = np.unique(codes)
    fold_of = np.zeros(facts["rows"].size, dtype=np.int64)
    for value in (0, 1):
        members = _time_order(present[facts["worst"][present] == value], facts, seed)
        if members.size < folds:
            kind = "with" if value else "without"
            raise TrainingError(
                f"cannot cross-validate: {members.size} customers {kind} a positive label "
                f"for {folds} folds (each fold needs both classes)"
            )
        fold_of[members] = np.arange(members.size) * folds // members.size
    return fold_of[codes]


def _grouped_split(
    codes: np.ndarray, labels: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (kept, held out) of the rows: about ``share`` of the customers held out,
    drawn at random within each class of their highest label."""
    customers, inverse = np.unique(codes, return_inverse=True)
    worst = np.zeros(customers.size, dtype=np.int64)
    np.maximum.at(worst, inverse, labels.astype(np.int64))
    rng = np.random.default_rng(seed)
    held = np.zeros(customers.size, dtype=bool)
    for value in (0, 1):
        members = np.flatnonzero(worst == value)
        count = int(round(share * members.size))
        if count == 0 or count == members.size:
            raise TrainingError(
                f"cannot split {customers.size} customers ({int(worst.sum())} with a positive "
                f"label) into {1 - share:.0%}/{share:.0%} with both classes on each side"
            )
        held[rng.permutation(members)[:count]] = True
    is_held = held[inverse]
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


# --- fitting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenger:
    """The new model before the gate's decision: fitted without the holdout."""

    booster: xgb.Booster  # the decision model: fit rows only, ``rounds`` trees
    rounds: int
    threshold: float
    method: Method
    metrics: dict[str, float]  # the estimate of the refit artifact (see ``metrics_source``)
    metrics_source: str  # "cross_validation", "holdout" or "validation"
    metrics_std: dict[str, float]  # over folds (cross-validation only)
    fold_metrics: list[dict[str, float]]
    holdout: np.ndarray  # row positions held out for the gate
    fit: np.ndarray  # row positions fitted on
    validation: np.ndarray  # validation part (validation method), else empty
    # rows scored by the decision model, which did not learn them: validation and holdout
    out_of_sample: np.ndarray
    out_of_sample_scores: np.ndarray
    holdout_scores: np.ndarray  # the decision model's, in ``holdout`` order
    out_of_fold_scores: np.ndarray  # cross-validation: in ``fit`` order; else empty


# On a few thousand rows, OpenMP threads cost more than they give: a seed-size
# cross-validation (1,350 rows, 78 features) took 0.42 s on one thread and 1.6 s on two.
SINGLE_THREAD_ROWS = 10_000


def _threads(rows: int, config: TrainingConfig) -> int:
    return 1 if rows <= SINGLE_THREAD_ROWS else config.threads


# Tree depth unless the parameters set one. Seed size (6 samples of 200 customers): depth 3
# cross-validated 0.878 against 0.874 for depth 4, in 0.39 s against 0.51 s. 100,000
# customers (625,407 rows): depth 5 reached holdout AUC 0.888 in 147 rounds (16 s), depth 3
# 0.886 in 453 rounds (29 s).
DEPTH: dict[str, int] = {"cross_validation": 3, "validation": 5}


def fit_params(config: TrainingConfig, method: Method) -> dict[str, Any]:
    """The XGBoost parameters a fit uses (threads aside)."""
    return {"max_depth": DEPTH[method], **config.params, "seed": config.seed}


def _params(config: TrainingConfig, rows: int, method: Method) -> dict[str, Any]:
    return {**fit_params(config, method), "nthread": _threads(rows, config)}


def _matrix(X: np.ndarray, y: np.ndarray, threads: int) -> xgb.DMatrix:
    """Without feature names: xgboost checks a matrix's names against the booster's on every
    round, decoding each name again (half the time of a cross-validation on 78 features);
    the artifact gets its names once trained (:func:`train_rounds`)."""
    return xgb.DMatrix(X, label=y, missing=np.nan, nthread=threads)


class _KeepFolds(xgb.callback.TrainingCallback):
    """Keeps what ``xgboost.cv`` only aggregates: each fold's validation AUC after every
    round, and the fold boosters for out-of-fold scores (xgboost issue #6756)."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[list[float]] = []  # rounds x folds
        self.boosters: list[xgb.Booster] = []

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        # "[epoch]\ttest-auc:0.81": xgboost's own evaluation, as xgboost.cv reads it
        self.rounds.append(
            [
                float(fold.bst.eval_set([(fold.dtest, "test")], epoch).rsplit(":", 1)[1])
                for fold in model.cvfolds
            ]
        )
        return False

    def after_training(self, model: Any) -> Any:
        self.boosters = [fold.bst for fold in model.cvfolds]
        return model

    @property
    def curves(self) -> np.ndarray:
        """Folds x rounds of validation AUCs."""
        return np.asarray(self.rounds).T


def fit_challenger(
    X: np.ndarray,
    y: np.ndarray,
    *,
    customer_ids: np.ndarray,
    observation_dates: np.ndarray,
    holdout: np.ndarray,
    feature_names: list[str],
    config: TrainingConfig = TrainingConfig(),
) -> Challenger:
    """Fit on every row outside ``holdout`` (see the module docstring), score the holdout."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape != (y.size, len(feature_names)):
        raise ValueError(f"X is {X.shape}; expected ({y.size}, {len(feature_names)})")
    check_trainable(y, config)
    codes, dates = customer_codes(customer_ids), np.asarray(observation_dates)
    holdout = np.asarray(holdout, dtype=np.int64)
    is_held = np.zeros(y.size, dtype=bool)
    is_held[holdout] = True
    fit = np.flatnonzero(~is_held)
    check_trainable(y[fit], config)
    if fit.size <= config.cv_max_rows:
        return _cross_validate(X, y, codes, dates, fit, holdout, feature_names, config)
    return _validate(X, y, codes, fit, holdout, feature_names, config)


def _cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    dates: np.ndarray,
    fit: np.ndarray,
    holdout: np.ndarray,
    names: list[str],
    config: TrainingConfig,
) -> Challenger:
    fold_of = _time_blocked_folds(codes[fit], dates[fit], y[fit], config.folds, config.seed)
    folds = [
        (np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(config.folds)
    ]
    matrix = _matrix(X[fit], y[fit], _threads(fit.size, config))
    keep = _KeepFolds()
    history: Any = xgb.cv(
        _params(config, fit.size, "cross_validation"),
        matrix,
        num_boost_round=config.num_boost_round,
        folds=folds,
        metrics=["auc"],
        early_stopping_rounds=config.early_stopping_rounds,
        as_pandas=False,
        callbacks=[keep],
    )
    rounds = len(history["test-auc-mean"])
    scores = np.empty(fit.size)
    own_rounds = _rounds_chosen_without_each_fold(keep.curves)
    for booster, (_, rows), count in zip(keep.boosters, folds, own_rounds, strict=True):
        scores[rows] = _scores(booster, X[fit[rows]], int(count), config.threads)
    threshold = choose_threshold(y[fit], scores)
    per_fold = [evaluate(y[fit[rows]], scores[rows], threshold) for _, rows in folds]
    decision = train_rounds(X[fit], y[fit], rounds, names, config)
    held_scores = _scores(decision, X[holdout], rounds, config.threads)
    return Challenger(
        booster=decision,
        rounds=rounds,
        threshold=threshold,
        method="cross_validation",
        metrics={k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]},
        metrics_source="cross_validation",
        metrics_std={k: float(np.std([m[k] for m in per_fold])) for k in per_fold[0]},
        fold_metrics=per_fold,
        holdout=holdout,
        fit=fit,
        validation=np.empty(0, dtype=np.int64),
        out_of_sample=holdout,
        out_of_sample_scores=held_scores,
        holdout_scores=held_scores,
        out_of_fold_scores=scores,
    )


def _rounds_chosen_without_each_fold(curves: np.ndarray) -> np.ndarray:
    """For each fold, the round count with the best mean AUC over the *other* folds
    (``curves``: folds x rounds of validation AUCs).

    Scoring a fold at the round count that is best on average over all folds would let that
    fold's own noise choose it: with shuffled labels the out-of-fold AUC came out above
    chance about one time in ten. Chosen on the other folds, the fold's scores stay honest."""
    others = (curves.sum(axis=0) - curves) / (curves.shape[0] - 1)
    return np.argmax(others, axis=1) + 1


def _validate(
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    fit: np.ndarray,
    holdout: np.ndarray,
    names: list[str],
    config: TrainingConfig,
) -> Challenger:
    kept, held = _grouped_split(codes[fit], y[fit], config.validation_share, config.seed + 1)
    train, validation = fit[kept], fit[held]
    booster = xgb.train(
        _params(config, train.size, "validation"),
        _matrix(X[train], y[train], config.threads),
        num_boost_round=config.num_boost_round,
        evals=[(_matrix(X[validation], y[validation], config.threads), "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    rounds = int(booster.best_iteration) + 1
    decision = booster[:rounds]  # a slice keeps no attributes: every tree in it is used
    valid_scores = _scores(decision, X[validation], rounds, config.threads)
    held_scores = _scores(decision, X[holdout], rounds, config.threads)
    threshold = choose_threshold(y[validation], valid_scores)
    source, on = ("holdout", holdout) if holdout.size else ("validation", validation)
    source_scores = held_scores if holdout.size else valid_scores
    return Challenger(
        booster=decision,
        rounds=rounds,
        threshold=threshold,
        method="validation",
        metrics=evaluate(y[on], source_scores, threshold),
        metrics_source=source,
        metrics_std={},
        fold_metrics=[],
        holdout=holdout,
        fit=fit,
        validation=validation,
        out_of_sample=np.concatenate([validation, holdout]),
        out_of_sample_scores=np.concatenate([valid_scores, held_scores]),
        holdout_scores=held_scores,
        out_of_fold_scores=np.empty(0),
    )


def train_rounds(
    X: np.ndarray, y: np.ndarray, rounds: int, feature_names: list[str], config: TrainingConfig
) -> xgb.Booster:
    """A booster of exactly ``rounds`` trees on all of ``X`` (no early stopping), with the
    cross-validation parameters: the refit artifact, and the cross-validated decision model."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    matrix = _matrix(X, y, config.threads)
    params = _params(config, y.size, "cross_validation")
    booster = xgb.train(params, matrix, num_boost_round=rounds, verbose_eval=False)
    booster.feature_names = list(feature_names)
    return booster


def _scores(booster: xgb.Booster, X: np.ndarray, rounds: int, threads: int) -> np.ndarray:
    data = np.asarray(X, dtype=np.float32)
    if not data.shape[0]:
        return np.empty(0)
    booster.set_param("nthread", str(threads))
    return np.asarray(booster.inplace_predict(data, iteration_range=(0, rounds), missing=np.nan))


def same_score_share(scores: np.ndarray) -> float:
    """The share of rows given the most common score (to 6 decimals): 1.0 for a constant."""
    scores = np.asarray(scores, dtype=float)
    if not scores.size:
        return float("nan")
    _, counts = np.unique(np.round(scores, 6), return_counts=True)
    return float(counts.max() / scores.size)


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
# start (measured). tests/modeling/test_training.py checks them against scikit-learn.


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
