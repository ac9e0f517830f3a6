"""``compute_features``: the historical engine on rows read from the database."""

from __future__ import annotations

import os
import time

import polars as pl

from predelinq.config import Settings
from predelinq.db.readers import read_inputs
from predelinq.features.declarations import FeatureSet
from predelinq.features.historical import features_for_observations
from predelinq.features.parse import configured_features


def compute_features(
    observations: pl.DataFrame,
    *,
    settings: Settings | None = None,
    features: FeatureSet | None = None,
    timings: dict[str, float] | None = None,
) -> pl.DataFrame:
    """Features for each ``(customer_id, observation_date)`` row, read from the database.

    Args:
        observations: columns ``customer_id`` and ``observation_date`` (a date).
        settings: where the database is; default ``Settings()``.
        features: what to compute; default the settings' built-in and declared features.
        timings: if given, filled with seconds per stage (``read``, ``compute``).
    """
    settings = settings or Settings()
    started = time.perf_counter()
    inputs = read_inputs(settings.database_url, observations)
    read_done = time.perf_counter()
    features = features or configured_features(settings)
    result = features_for_observations(
        observations, inputs, features, threads=settings.threads or os.cpu_count() or 1
    )
    if timings is not None:
        timings.update(read=read_done - started, compute=time.perf_counter() - read_done)
    return result
