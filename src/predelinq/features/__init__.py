"""Point-in-time behavioural features, one module per family, computed in one vectorised pass.

``compute_features(observations)`` reads the selected customers' events from the database and
returns a feature row per observation; ``features_from_frames`` does the same from frames.
"""

from predelinq.features.compute import FEATURE_NAMES, FEATURES, features_from_frames
from predelinq.features.read import compute_features, read_inputs
from predelinq.features.registry import FAMILIES, Feature

__all__ = [
    "FAMILIES",
    "FEATURES",
    "FEATURE_NAMES",
    "Feature",
    "compute_features",
    "features_from_frames",
    "read_inputs",
]
