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

from predelinq.errors import TrainingError
from predelinq.modeling.metrics import choose_threshold, evaluate
from predelinq.modeling.split import (
    customer_codes,
    grouped_split,
    time_blocked_folds,
)


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


@dataclass(frozen=True)
class Fitted:
    """What the gate and the registry take from a fit, here or on a Dask cluster."""

    challenger: Challenger
    artifact: xgb.Booster  # the model to store (see ``retraining/run.py``)
    scores: np.ndarray  # the artifact's, on every row
    champion_scores: np.ndarray | None  # the champion's, on the holdout (in its order)
    X: np.ndarray  # the rows the version's profile and importance are computed on
    rows: np.ndarray | None = None  # their positions among the observations (None: all)


def uses_cross_validation(fit_rows: int, config: TrainingConfig) -> bool:
    return fit_rows <= config.cv_max_rows


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
    if uses_cross_validation(fit.size, config):
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
    fold_of = time_blocked_folds(codes[fit], dates[fit], y[fit], config.folds, config.seed)
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
    rounds: np.ndarray = np.argmax(others, axis=1) + 1
    return rounds


def _validate(
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    fit: np.ndarray,
    holdout: np.ndarray,
    names: list[str],
    config: TrainingConfig,
) -> Challenger:
    train, validation = validation_split(codes, y, fit, config)
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
    return validated_challenger(
        decision, rounds, y, fit, validation, holdout, valid_scores, held_scores
    )


def validation_split(
    codes: np.ndarray, y: np.ndarray, fit: np.ndarray, config: TrainingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The fit rows to train on and the validation part (whole customers, seeded)."""
    kept, held = grouped_split(codes[fit], y[fit], config.validation_share, config.seed + 1)
    return fit[kept], fit[held]


def validated_challenger(
    decision: xgb.Booster,
    rounds: int,
    y: np.ndarray,
    fit: np.ndarray,
    validation: np.ndarray,
    holdout: np.ndarray,
    valid_scores: np.ndarray,
    held_scores: np.ndarray,
) -> Challenger:
    """The challenger of the validation method, from the decision model's scores of the
    validation part and the holdout (here, or on a Dask cluster: ``scaleout/train.py``)."""
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
