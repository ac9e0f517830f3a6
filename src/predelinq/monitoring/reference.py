"""A model version's reference profile: built from its training rows at registration,
stored in ``model_profiles`` in the registration's transaction, read back by drift.

Versions registered before profiles existed have none: ``load_profile`` returns None and
drift reports that, with no PSI (it cannot say what the model learnt from)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import xgboost
from sqlalchemy import Connection, insert, select

from predelinq.db.schema import model_profiles
from predelinq.features.declarations import FeatureSet
from predelinq.modeling.booster import predict
from predelinq.monitoring.profile import Profile
from predelinq.monitoring.scope import data_starts, reference_profile


def training_profile(
    connection: Connection,
    artifact: xgboost.Booster,
    X: np.ndarray,
    observation_dates: np.ndarray,
    features: FeatureSet,
    *,
    bins: int,
    threads: int,
) -> Profile:
    """The profile of the rows a model was trained on (``X``: a column per feature of
    ``features``), scored by the model itself (see :mod:`predelinq.monitoring.scope`)."""
    starts = data_starts(connection)

    def score(rows: np.ndarray) -> np.ndarray:
        return predict(artifact, rows, threads=threads)

    return reference_profile(X, observation_dates, score, features, starts, bins)


def store_profile(
    connection: Connection, version: str, profile: Profile, created_at: datetime
) -> None:
    """Store ``version``'s profile (after its ``model_versions`` row, same transaction)."""
    connection.execute(
        insert(model_profiles).values(
            model_version=version,
            created_at=created_at,
            rows=profile.rows,
            profile=profile.as_json(),
        )
    )


def load_profile(connection: Connection, version: str) -> Profile | None:
    """``version``'s reference profile; None for a version registered without one."""
    stored = connection.execute(
        select(model_profiles.c.profile).where(model_profiles.c.model_version == version)
    ).scalar_one_or_none()
    return None if stored is None else Profile.from_json(stored)
