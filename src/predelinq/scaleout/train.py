"""Training on the cluster with ``xgboost.dask`` (distributed ``hist``): the validation method
of ``modeling/fit.py`` on feature rows that stay on the workers.

The split is the local path's (the same holdout, the same seeded validation customers), and
so are the challenger, its threshold and metrics (``validated_challenger``). Only scores come
back to the client: the decision model's on every row and the champion's on the holdout, for
the gate. The version's profile and importance are computed on a seeded sample of at most
``PROFILE_ROWS`` rows, the only feature rows gathered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb
from xgboost.collective import Config

from predelinq.modeling.fit import (
    Fitted,
    TrainingConfig,
    fit_params,
    validated_challenger,
    validation_split,
)
from predelinq.modeling.registry import Champion
from predelinq.modeling.split import customer_codes
from predelinq.scaleout.features import PartitionedFeatures

if TYPE_CHECKING:
    import dask.array as da

PROFILE_ROWS = 200_000  # the reference profile's bins and the importance sample
COLLECTIVE_SECONDS = 300  # longest wait for the other workers in one collective operation


def fit_on_cluster(
    features: PartitionedFeatures,
    y: np.ndarray,
    *,
    customer_ids: np.ndarray,
    holdout: np.ndarray,
    config: TrainingConfig,
    champion: Champion | None,
) -> Fitted:
    """Fit with early stopping on the validation part, on the cluster; score there."""
    n = features.height
    is_held = np.zeros(n, dtype=bool)
    is_held[holdout] = True
    fit = np.flatnonzero(~is_held)
    train, validation = validation_split(customer_codes(customer_ids), y, fit, config)
    booster = _train(features, y, train, validation, config)
    rounds = int(booster.best_iteration) + 1
    decision = booster[:rounds]  # a slice keeps no attributes: every tree in it is used
    decision.feature_names = features.names
    scores = features.predict(decision, np.ones(n, dtype=bool))
    champion_scores = None
    if champion is not None:
        on_held = features.predict(champion.booster, is_held, columns=champion.columns)
        champion_scores = on_held[holdout]
    X_sample, sample_rows = features.rows_of(_mask(_sample(n, config.seed), n))
    X_here = np.asarray(X_sample.compute())
    challenger = validated_challenger(
        decision, rounds, y, fit, validation, holdout, scores[validation], scores[holdout]
    )
    return Fitted(challenger, decision, scores, champion_scores, X_here, sample_rows)


def _train(
    features: PartitionedFeatures,
    y: np.ndarray,
    train: np.ndarray,
    validation: np.ndarray,
    config: TrainingConfig,
) -> xgb.Booster:
    """``xgboost.dask`` on the train rows, stopping early on the validation rows. Their
    matrices are released on return: scoring reads the partitions' frames."""
    import xgboost.dask as xgd  # imports Dask: only in Dask mode

    n, client = features.height, features.client
    X_train, train_rows = features.rows_of(_mask(train, n), np.float32)
    X_valid, valid_rows = features.rows_of(_mask(validation, n), np.float32)
    params = fit_params(config, "validation")
    dtrain = _matrix(client, X_train, y[train_rows], params)
    trained: dict[str, Any] = xgd.train(
        client,
        params,
        dtrain,
        num_boost_round=config.num_boost_round,
        evals=[(_matrix(client, X_valid, y[valid_rows], params, ref=dtrain), "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
        # a peer lost mid-round fails the run instead of leaving the others waiting
        coll_cfg=Config(timeout=COLLECTIVE_SECONDS, tracker_timeout=COLLECTIVE_SECONDS),
    )
    booster: xgb.Booster = trained["booster"]
    return booster


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    wanted = np.zeros(n, dtype=bool)
    wanted[rows] = True
    return wanted


def _matrix(
    client: Any, X: da.Array, y: np.ndarray, params: dict[str, Any], ref: Any = None
) -> Any:
    """A distributed quantile matrix (``hist``'s bins, built straight from the chunks, with
    no float copy of them kept); the labels are chunked as ``X`` is. The validation matrix
    takes the training matrix's bins (``ref``)."""
    import dask.array as da
    import xgboost.dask as xgd

    labels = da.from_array(y.astype(np.float32), chunks=(X.chunks[0],))
    return xgd.DaskQuantileDMatrix(
        client, X, labels, missing=np.nan, max_bin=params.get("max_bin"), ref=ref
    )


def _sample(n: int, seed: int) -> np.ndarray:
    if n <= PROFILE_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, PROFILE_ROWS, replace=False))
