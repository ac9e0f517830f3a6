"""Recording a run: the artifact first (atomic, on disk), then one transaction for the version,
the customers' training status, the champion and the log row; or, for an attempt that stopped
early, its log row alone (see :mod:`predelinq.retraining.run` for the guarantees)."""

from __future__ import annotations

import json
import time
from datetime import datetime

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, select
from sqlalchemy import insert as insert_
from sqlalchemy.sql import Insert

from predelinq import __version__
from predelinq.clock import utc_now
from predelinq.config import Settings
from predelinq.db.schema import model_retraining_log, model_versions
from predelinq.features.declarations import (
    FeatureSet,
    fingerprints,
)
from predelinq.modeling.artifacts import (
    ArtifactWriteError,
    export_seed,
    remove_version_files,
    save_artifact,
)
from predelinq.modeling.explain import calibration, importance
from predelinq.modeling.fit import (
    Challenger,
    fit_params,
)
from predelinq.modeling.registry import (
    VersionDetails,
    champion_transaction,
    current_champion,
    register_version,
    set_champion,
)
from predelinq.monitoring.profile import Profile
from predelinq.monitoring.reference import store_profile, training_profile
from predelinq.retraining.result import Hooks, RetrainResult, Trained
from predelinq.retraining.selection import mark_trained
from predelinq.statuses import ChampionAction, RunStatus, TrainingPart


def _parts(customer_ids: np.ndarray, challenger: Challenger) -> pl.DataFrame:
    """Each selected customer's part and whether the stored artifact learnt from it."""
    part = np.full(customer_ids.size, TrainingPart.FIT.value, dtype=object)
    part[challenger.validation] = TrainingPart.VALIDATION.value
    part[challenger.holdout] = TrainingPart.HOLDOUT.value
    refit = challenger.method == "cross_validation"
    frame = pl.DataFrame({"customer_id": customer_ids.astype(str), "part": part.astype(str)})
    return frame.unique("customer_id", keep="first").with_columns(
        learnt=pl.lit(True) if refit else pl.col("part") == TrainingPart.FIT.value
    )


def unique_version_name(connection: Connection, when: datetime) -> str:
    """``auto_retrain_YYYYMMDD_HHMMSS`` as in the seed; a suffix keeps it unique in a second."""
    base = f"auto_retrain_{when:%Y%m%d_%H%M%S}"
    taken = set(
        connection.execute(
            select(model_versions.c.model_version).where(
                model_versions.c.model_version.startswith(base, autoescape=True)
            )
        ).scalars()
    )
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def register_run(
    engine: Engine,
    settings: Settings,
    trained: Trained,
    feature_set: FeatureSet,
    selected: pl.DataFrame,
    result: RetrainResult,
    actor: str,
    hooks: Hooks,
    started: float,
) -> None:
    """Artifact first (atomic, on disk), then every database change in one transaction."""
    now = utc_now()
    with engine.connect() as connection:
        result.model_version = unique_version_name(connection, now)
        profile = _profile(connection, settings, trained, feature_set)
    challenger = trained.challenger
    details: VersionDetails = {
        "metrics": result.metrics,
        "metrics_std": result.metrics_std,
        "metrics_source": result.metrics_source,
        "fold_metrics": challenger.fold_metrics,
        "fit": {
            **result.parts,
            "artifact": (
                "refit on every selected row with the chosen rounds"
                if challenger.method == "cross_validation"
                else "the decision model: fit rows outside the validation part, best round"
            ),
        },
        "threshold": challenger.threshold,
        "feature_names": trained.feature_names,
        "feature_set_fingerprint": feature_set.fingerprint(),
        "feature_fingerprints": fingerprints(feature_set),
        "params": fit_params(trained.config, challenger.method),
        "customers_trained": result.customers_trained,
        "samples_trained": result.samples_trained,
        "selection_seed": result.selection_seed,
        "trigger_reason": result.reason,
        "gate": result.gate,
        "gate_evidence": result.gate_evidence,
        "champion_auc": result.champion_auc,
        "package_version": __version__,
    }
    details.update(_explanations(trained))
    artifact = trained.artifact
    # a plain xgboost.Booster carries what scoring needs: every tree is used (no
    # best_iteration), and the threshold and features are attributes
    artifact.set_attr(
        model_version=result.model_version,
        threshold=repr(challenger.threshold),
        feature_names=json.dumps(trained.feature_names),
        feature_set_fingerprint=feature_set.fingerprint(),
    )
    try:
        stored = save_artifact(settings.model_dir, result.model_version, artifact, details)
    except ArtifactWriteError as error:
        log_failure(engine, result, str(error), started)
        raise
    result.status = RunStatus.SUCCESS if result.promoted else RunStatus.REJECTED
    hooks.before_commit()
    try:
        with champion_transaction(engine) as connection:
            _keep_out_if_the_champion_moved(current_champion(connection), trained, result, details)
            register_version(
                connection,
                version=result.model_version,
                artifact=stored,
                threshold=challenger.threshold,
                auc=_finite(result.metrics.get("auc")),
                details=details,
                created_at=now,
            )
            if profile is not None:
                store_profile(connection, result.model_version, profile, now)
            parts = _parts(trained.customer_ids, trained.challenger)
            mark_trained(connection, selected, now, model_version=result.model_version, parts=parts)
            if result.promoted:
                set_champion(
                    connection,
                    to_version=result.model_version,
                    action=ChampionAction.RETRAIN,
                    actor=actor,
                    reason=result.gate,
                )
                # under the champion lock: the last move's artifact is the one exported
                payload = (settings.model_dir / stored.relative_path).read_bytes()
                result.seed_export_error = export_seed(settings.model_dir, payload)
            result.duration_seconds = time.perf_counter() - started
            connection.execute(_log_statement(result, now))
    except BaseException:
        remove_version_files(settings.model_dir, result.model_version)  # never registered
        raise


def _profile(
    connection: Connection, settings: Settings, trained: Trained, feature_set: FeatureSet
) -> Profile | None:
    """The version's reference profile: its training rows, scored by its artifact."""
    if trained.X is None or trained.observation_dates is None:
        return None
    return training_profile(
        connection,
        trained.artifact,
        trained.X,
        trained.observation_dates,
        feature_set,
        bins=settings.monitoring.bins,
        threads=settings.threads,
    )


def _explanations(trained: Trained) -> VersionDetails:
    """The importance of each feature on the training rows (a seeded sample), and the
    calibration on the rows the decision model did not learn (``Challenger.out_of_sample``):
    the holdout, and after the validation method the validation part too. After
    cross-validation the artifact is refit on every row, holdout included, so its
    calibration is estimated as its metrics are: by the decision model's."""
    found: VersionDetails = {}
    if trained.X is not None:
        # one thread, as fit.py below SINGLE_THREAD_ROWS: 5,000 rows (depth 5, 66 trees) took
        # 1.09 s on one thread and 1.09 s on two, on a busy machine. The booster is private.
        trained.artifact.set_param("nthread", "1")
        found["importance"] = importance(
            trained.artifact, trained.X, trained.feature_names, threads=1, seed=trained.config.seed
        )
    if trained.y is not None:
        challenger = trained.challenger
        labels = trained.y[challenger.out_of_sample]
        deciles = calibration(challenger.out_of_sample_scores, labels)
        found["calibration"] = [decile.as_json() for decile in deciles]
        found["calibration_source"] = "out_of_sample"
    return found


def _keep_out_if_the_champion_moved(
    in_service: str | None, trained: Trained, result: RetrainResult, details: VersionDetails
) -> None:
    """The gate judged against ``trained.judged_against``; a promote or rollback since then
    stands, and the challenger is kept out (it can still be promoted by hand)."""
    if not result.promoted or in_service == trained.judged_against:
        return
    result.promoted, result.status = False, RunStatus.REJECTED
    result.champion_problem = None  # about a champion no longer in service
    result.gate = (
        f"kept out: the champion changed during the retrain (from "
        f"{trained.judged_against or 'none'} to {in_service or 'none'}), so the gate's "
        f"verdict no longer applies (it said: {result.gate})"
    )
    result.gate_evidence = result.gate_evidence | {"champion_changed_to": in_service}
    details["gate"], details["gate_evidence"] = result.gate, result.gate_evidence


def _log_statement(result: RetrainResult, now: datetime) -> Insert:
    metrics = result.metrics
    return insert_(model_retraining_log).values(
        retrain_date=now,
        customers_trained=result.customers_trained,
        samples_trained=result.samples_trained,
        auc_score=_finite(metrics.get("auc")),
        precision_score=_finite(metrics.get("precision")),
        recall_score=_finite(metrics.get("recall")),
        f1_score=_finite(metrics.get("f1")),
        model_version=result.model_version,
        trigger_reason=result.reason,
        training_duration_seconds=result.duration_seconds,
        status=result.status,
        promoted=result.promoted,
        error=result.error or _export_note(result),
        decision=result.gate or None,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _export_note(result: RetrainResult) -> str | None:
    if result.seed_export_error is None:
        return None
    return f"promoted, but the seed export failed: {result.seed_export_error}"


def log_failure(engine: Engine, result: RetrainResult, error: str, started: float) -> None:
    """Log an attempt that stopped before registering anything; it changes no customer's
    status."""
    result.status, result.promoted, result.error = RunStatus.FAILED, False, error
    result.model_version = None
    result.duration_seconds = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(_log_statement(result, utc_now()))
