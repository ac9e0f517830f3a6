"""Automatic retraining: check -> select -> features -> train -> gate -> register -> log.

``check_and_retrain`` is the seed's ``check_and_retrain.py`` flow; ``retrain`` does one run
under the retraining lock. A run's artifact is written (atomically) before its database
changes, and those changes (version, log row, customers' training status, champion) are one
transaction: a crash at any point leaves the previous champion in service and no customer
marked as trained without a matching log row. An artifact that cannot be written, or a
transaction that fails, leaves no version folder behind; the first is logged as failed.

That transaction holds the champion lock (see ``registry.champion_transaction``) and reads
the champion again: if it is no longer the one the gate judged against (a promote or
rollback happened during the retrain), the challenger is kept out, registered as rejected,
and the move stands. A champion whose artifact is missing or fails verification is replaced
only with ``force``; otherwise the challenger is kept out and the result says why
(``champion_problem``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import polars as pl
import xgboost
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.errors import TrainingError
from predelinq.features import compute_features
from predelinq.features.declarations import FeatureMismatchError, FeatureSet
from predelinq.features.parse import configured_features
from predelinq.modeling.artifacts import ArtifactError
from predelinq.modeling.booster import predict
from predelinq.modeling.fit import (
    Challenger,
    Fitted,
    TrainingConfig,
    check_trainable,
    default_params,
    fit_challenger,
    train_rounds,
    uses_cross_validation,
)
from predelinq.modeling.metrics import same_score_share
from predelinq.modeling.registry import Champion, current_champion, load_champion
from predelinq.modeling.split import holdout_rows
from predelinq.retraining.check import CheckDecision, decide
from predelinq.retraining.gate import GateDecision, Scored, auc_interval, cross_validated_auc, judge
from predelinq.retraining.lock import retraining_lock
from predelinq.retraining.record import log_failure, register_run
from predelinq.retraining.result import Hooks, RetrainResult, Trained
from predelinq.retraining.selection import read_labels, select_customers, training_customers
from predelinq.scaleout import (
    Cluster,
    ClusterError,
    cluster_failures,
    dask_mode,
    fit_on_cluster,
    partitioned_features,
)
from predelinq.statuses import RunStatus


def training_config(settings: Settings, seed: int) -> TrainingConfig:
    """The ``[training]`` settings as the trainer's configuration, for one run's seed."""
    table = settings.training
    return TrainingConfig(
        params=default_params() | table.params,
        num_boost_round=table.num_boost_round,
        early_stopping_rounds=table.early_stopping_rounds,
        threads=settings.threads,
        seed=seed,
        cv_max_rows=table.cv_max_rows,
        folds=table.folds,
        validation_share=table.validation_share,
        holdout_share=table.holdout_share,
    )


# --- the run ---------------------------------------------------------------------------------


class RetrainOptions(TypedDict, total=False):
    """``retrain_locked``'s keyword arguments (its defaults apply), which ``retrain`` passes on."""

    reason: str
    max_customers: int | Literal["all"] | None
    force: bool
    actor: str
    hooks: Hooks | None
    seed: int | None


def retrain(engine: Engine, settings: Settings, **options: Unpack[RetrainOptions]) -> RetrainResult:
    """One retrain under the lock; raises ``RetrainingBusyError`` if another is running.
    ``seed`` (selection, folds, holdout ties, XGBoost) is random unless given; either way it
    is recorded, and the same seed on the same data gives the same model."""
    with retraining_lock(engine):
        return retrain_locked(engine, settings, **options)


def retrain_locked(
    engine: Engine,
    settings: Settings,
    *,
    reason: str = "Manual retrain",
    max_customers: int | Literal["all"] | None = None,
    force: bool = False,
    actor: str = "cli",
    hooks: Hooks | None = None,
    seed: int | None = None,
) -> RetrainResult:
    """One retrain; the caller already holds the retraining lock (see ``retrain``). In Dask
    mode the cluster is reached first: a refused or unreachable one logs no run."""
    with dask_mode(engine, settings) as cluster:
        return _run(engine, settings, cluster, reason, max_customers, force, actor, hooks, seed)


def _run(
    engine: Engine,
    settings: Settings,
    cluster: Cluster | None,
    reason: str,
    max_customers: int | Literal["all"] | None,
    force: bool,
    actor: str,
    hooks: Hooks | None,
    seed: int | None,
) -> RetrainResult:
    hooks = hooks or Hooks()
    max_customers = settings.max_customers if max_customers is None else max_customers
    started = time.perf_counter()
    seed = secrets.randbits(31) if seed is None else seed
    result = RetrainResult(status=RunStatus.FAILED, reason=reason, selection_seed=seed)
    stage = _Stopwatch(result.stage_seconds, hooks.on_stage)
    with stage("select"):
        selected = select_customers(engine, max_customers, seed=seed)
    result.customers_trained = selected.height
    config = training_config(settings, seed)
    feature_set = configured_features(settings)
    names = list(feature_set.names)
    try:
        with stage("read_labels"):
            observations = read_labels(engine, selected)
        result.samples_trained = observations.height
        y = observations["label"].to_numpy()
        check_trainable(y, config)  # before any feature work
        with cluster_failures(cluster):
            fitted, champion = _features_and_fit(
                engine, settings, observations, selected, feature_set, config, cluster, stage
            )
    except (TrainingError, ClusterError) as error:
        log_failure(engine, result, str(error), started)
        return result
    challenger = fitted.challenger
    result.metrics, result.metrics_std = challenger.metrics, challenger.metrics_std
    result.metrics_source = challenger.metrics_source
    result.parts = {
        "method": challenger.method,
        "folds": len(challenger.fold_metrics) or None,
        "fit": int(challenger.fit.size),
        "holdout": int(challenger.holdout.size),
        "validation": int(challenger.validation.size),
        "refit": int(y.size) if challenger.method == "cross_validation" else 0,
        "rounds": challenger.rounds,
    }
    with stage("evaluate"):
        customer_ids = observations["customer_id"].to_numpy()
        decision = _judge(y, customer_ids, fitted, champion, settings, force=force)
        result.promoted, result.champion_auc = decision.promoted, decision.champion_auc
        result.gate, result.gate_evidence = decision.explanation, decision.evidence
        if champion.broken is not None:
            result.champion_problem = str(champion.broken)
            result.error = None if result.promoted else result.champion_problem
    with stage("register"):
        dates = observations["observation_date"].to_numpy()
        trained = Trained(
            fitted.artifact,
            challenger,
            config,
            names,
            customer_ids,
            champion.version,
            fitted.X,
            dates if fitted.rows is None else dates[fitted.rows],
            y,
        )
        register_run(
            engine, settings, trained, feature_set, selected, result, actor, hooks, started
        )
    return result


def _features_and_fit(
    engine: Engine,
    settings: Settings,
    observations: pl.DataFrame,
    selected: pl.DataFrame,
    feature_set: FeatureSet,
    config: TrainingConfig,
    cluster: Cluster | None,
    stage: _Stopwatch,
) -> tuple[Fitted, _Champion]:
    """The features of every observation, here or on the workers, then the challenger: on
    the cluster with ``xgboost.dask`` when there is one and the data is larger than
    cross-validation takes; else here (a cluster's features are gathered first)."""
    names = list(feature_set.names)
    keys = observations.select("customer_id", "observation_date")
    y = observations["label"].to_numpy()
    customer_ids = observations["customer_id"].to_numpy()
    partitioned, X = None, None
    if cluster is None:
        stage.on_stage("features")
        features = compute_features(
            engine, keys, settings=settings, features=feature_set, timings=stage.seconds
        )
        X = features.select(names).to_numpy()
    else:
        with stage("features"):
            partitioned = partitioned_features(
                cluster, engine, keys, settings=settings, features=feature_set
            )
    with stage("train"):
        champion = _champion(engine, settings, feature_set)
        eligible = _unseen_by(champion, observations, selected)
        dates = observations["observation_date"].to_numpy()
        holdout = holdout_rows(
            customer_ids, dates, y, eligible=eligible, share=config.holdout_share, seed=config.seed
        )
        if partitioned is not None:
            if not uses_cross_validation(y.size - holdout.size, config):
                fitted = fit_on_cluster(
                    partitioned,
                    y,
                    customer_ids=customer_ids,
                    holdout=holdout,
                    config=config,
                    champion=champion.loaded,
                )
                return fitted, champion
            X = partitioned.gather().select(names).to_numpy()
        assert X is not None
        challenger = fit_challenger(
            X,
            y,
            customer_ids=customer_ids,
            observation_dates=dates,
            holdout=holdout,
            feature_names=names,
            config=config,
        )
        artifact = _artifact(X, y, challenger, names, config)
        champion_scores = None
        if champion.loaded is not None:
            held = X[challenger.holdout][:, champion.loaded.columns]
            champion_scores = predict(champion.loaded.booster, held, threads=settings.threads)
        scores = predict(artifact, X, threads=settings.threads)
        return Fitted(challenger, artifact, scores, champion_scores, X), champion


def _artifact(
    X: np.ndarray,
    y: np.ndarray,
    challenger: Challenger,
    names: list[str],
    config: TrainingConfig,
) -> xgboost.Booster:
    """The model to store: refit on every row after cross-validation; after a validation
    part (large data) the decision model itself. A refit there cost as much again (27 s of
    a 100,000-customer retrain) for a fifth more rows of hundreds of thousands."""
    if challenger.method == "cross_validation":
        return train_rounds(X, y, challenger.rounds, names, config)
    challenger.booster.feature_names = names
    return challenger.booster


@dataclass(frozen=True)
class _Champion:
    """The champion as the gate sees it: loaded, or why it cannot be compared."""

    version: str | None
    loaded: Champion | None = None
    not_comparable: str | None = None
    customers: pl.Series | None = None  # whom it learnt from (None: not recorded)
    broken: ArtifactError | None = None  # its artifact is missing or fails verification

    @property
    def comparable(self) -> bool:
        return self.loaded is not None


def _champion(engine: Engine, settings: Settings, features: FeatureSet) -> _Champion:
    """The model in service and its columns, or why it cannot be compared. (Should it move
    meanwhile, the register stage finds a champion other than the one judged against, and
    keeps the challenger out.)"""
    with engine.connect() as connection:
        version = current_champion(connection)
        customers = None if version is None else training_customers(connection, version)
    if version is None:
        return _Champion(None)
    try:
        loaded = load_champion(engine, settings.model_dir, features)
    except FeatureMismatchError as error:
        # it cannot be served with today's features either: judged as a first model
        return _Champion(version, not_comparable=f"not comparable ({error})")
    except ArtifactError as error:
        return _Champion(
            version, not_comparable=f"cannot be loaded ({error.problem})", broken=error
        )
    if loaded is None:
        return _Champion(None)
    if loaded.version != version:  # moved between the two reads: whom it learnt, unknown
        customers = None
    return _Champion(loaded.version, loaded, customers=customers)


def _unseen_by(
    champion: _Champion, observations: pl.DataFrame, selected: pl.DataFrame
) -> np.ndarray:
    """Rows the gate may compare on: customers the champion never learnt from (for versions
    without a record, customers no retrain included); every row when there is nothing to
    compare with."""
    if not champion.comparable:
        return np.ones(observations.height, dtype=bool)
    if champion.customers is not None:
        return ~observations["customer_id"].is_in(champion.customers.implode()).to_numpy()
    trained = observations.join(
        selected.select("customer_id", "trained"), on="customer_id", maintain_order="left"
    )["trained"]
    return ~trained.to_numpy()


def _judge(
    y: np.ndarray,
    customer_ids: np.ndarray,
    fitted: Fitted,
    champion: _Champion,
    settings: Settings,
    *,
    force: bool,
) -> GateDecision:
    """Let the gate decide (see :mod:`predelinq.retraining.gate`) on the fit's scores."""
    challenger = fitted.challenger
    if challenger.method == "cross_validation":
        folds, fit = len(challenger.fold_metrics), challenger.fit
        pooled = Scored(y[fit], challenger.out_of_fold_scores, customer_ids[fit])
        skill = cross_validated_auc(pooled, folds)
        basis = f"out-of-fold scores of {folds}-fold cross-validation, {fit.size} rows"
    else:
        rows = challenger.out_of_sample
        scored = Scored(y[rows], challenger.out_of_sample_scores, customer_ids[rows])
        skill = auc_interval(scored)
        basis = f"{rows.size} validation and holdout rows"
    held = challenger.holdout
    newest = Scored(y[held], challenger.holdout_scores, customer_ids[held]) if held.size else None
    holdout = None
    if fitted.champion_scores is not None:
        holdout = Scored(
            y[held], challenger.holdout_scores, customer_ids[held], fitted.champion_scores
        )
    return judge(
        skill,
        basis,
        same_score_share(fitted.scores),
        newest=newest,
        holdout=holdout,
        champion=champion.version,
        not_comparable=champion.not_comparable,
        champion_broken=None if champion.broken is None else champion.broken.problem,
        tolerance=settings.gate_tolerance,
        force=force,
    )


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


# --- the check ------------------------------------------------------------------------------


@dataclass
class CheckOutcome:
    status: dict[str, Any]  # the seed's status, as counted before any retrain
    result: RetrainResult | None
    decision: CheckDecision


def check_and_retrain(
    engine: Engine,
    settings: Settings,
    *,
    actor: str = "check",
    hooks: Hooks | None = None,
    decision: CheckDecision | None = None,
    dry_run: bool = False,
) -> CheckOutcome:
    """Judge every trigger (``retraining/check.py``; or take the ``decision`` already made)
    and retrain when one fires, with every fired trigger as the reason; ``dry_run``: decide
    only."""
    decision = decide(engine, settings) if decision is None else decision
    if not decision.retrain or dry_run:
        return CheckOutcome(decision.status, None, decision)
    result = retrain(engine, settings, reason=decision.reason, actor=actor, hooks=hooks)
    return CheckOutcome(decision.status, result, decision)
