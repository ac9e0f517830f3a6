"""``compute_features``: the historical engine on the observed customers' rows, read from
the database."""

from __future__ import annotations

import time

import polars as pl
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db.readers import read_inputs
from predelinq.features.declarations import FeatureSet
from predelinq.features.historical import features_for_observations
from predelinq.features.parse import configured_features


def compute_features(
    engine: Engine,
    observations: pl.DataFrame,
    *,
    settings: Settings,
    features: FeatureSet | None = None,
    timings: dict[str, float] | None = None,
    snapshot: str | None = None,
) -> pl.DataFrame:
    """Features for each ``(customer_id, observation_date)`` row, read from the database.

    Args:
        engine: the database (``predelinq.db.open_database(settings)``).
        observations: columns ``customer_id`` and ``observation_date`` (a date).
        settings: how to read (``read_connections``, ``large_read_customers``) and compute
            (``threads``), and the declared features.
        features: what to compute; default the settings' built-in and declared features.
        timings: if given, filled with seconds per stage (``read``, ``compute``).
        snapshot: PostgreSQL: read this exported snapshot (see ``read_inputs``).
    """
    started = time.perf_counter()
    inputs = read_inputs(engine, observations, settings, snapshot=snapshot)
    read_done = time.perf_counter()
    features = features or configured_features(settings)
    result = features_for_observations(observations, inputs, features, threads=settings.threads)
    if timings is not None:
        timings.update(read=read_done - started, compute=time.perf_counter() - read_done)
    return result
