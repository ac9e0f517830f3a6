"""Score customers as of a date with the champion model."""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.features.declarations import model_columns
from predelinq.features.export import features_as_of
from predelinq.features.freshness import FRESHNESS_COLUMNS
from predelinq.features.parse import configured_features
from predelinq.modeling.booster import predict
from predelinq.modeling.registry import current_champion, get_version, load_version


class NoChampionError(Exception):
    """No model has been promoted yet."""


def score_customers(
    engine: Engine, settings: Settings, *, as_of: date, customer_ids: pl.Series | None = None
) -> pl.DataFrame:
    """``customer_id``, ``risk_score``, ``model_version`` for each customer as of ``as_of``,
    then the data's freshness: ``last_event_at`` (the newest event the features used) and
    ``data_age_days`` (see :mod:`predelinq.features.freshness`).
    Raises ``NoChampionError``, or ``ArtifactError`` (naming the version and the fix) when
    the champion's artifact is missing or fails verification."""
    with engine.connect() as connection:
        champion = current_champion(connection)
        if champion is None:
            raise NoChampionError("no champion model yet: run `predelinq check` or `retrain`")
        row = get_version(connection, champion)
    feature_set = configured_features(settings)
    columns = model_columns(champion, row["details"], feature_set)  # before any work
    booster = load_version(settings.model_dir, row, champion=True)
    features = features_as_of(engine, settings, as_of, customer_ids, feature_set, freshness=True)
    X = features.select(feature_set.names).to_numpy()[:, columns]
    scores = predict(booster, X, threads=settings.threads or 2)
    return features.select(
        "customer_id",
        pl.Series("risk_score", scores, dtype=pl.Float64),
        pl.lit(champion).alias("model_version"),
        *FRESHNESS_COLUMNS,
    )
