"""Point-in-time features: declarations (data) -> historical engine (many dates) and online
engine (one date).

``compute_features(engine, observations, settings=...)`` reads the observed customers' rows from the
database and returns a feature row per observation (historical engine);
``features_at_date`` computes features of many customers at one date (online engine).
"""

from predelinq.db.readers import read_inputs
from predelinq.features.compute import compute_features
from predelinq.features.declarations import (
    Feature,
    FeatureDeclarationError,
    FeatureMismatchError,
    FeatureSet,
)
from predelinq.features.historical import features_for_observations
from predelinq.features.online import feature_matrix_at_date, features_at_date
from predelinq.features.parse import builtin_features, configured_features, feature_set

__all__ = [
    "Feature",
    "FeatureDeclarationError",
    "FeatureMismatchError",
    "FeatureSet",
    "builtin_features",
    "compute_features",
    "configured_features",
    "feature_matrix_at_date",
    "feature_set",
    "features_at_date",
    "features_for_observations",
    "read_inputs",
]
