"""From aggregate values to feature columns: ``scale``, ``minus``, ``ratio``, ``transform``.

Both engines compute each distinct ``Aggregate`` once (many features share one) and hand the
results here, so what a declaration means after its aggregation is written once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from predelinq.features.declarations import Aggregate, FeatureSet, references


def aggregates_of(features: FeatureSet) -> list[Aggregate]:
    """Every distinct aggregate the features need, in first-use order."""
    seen: dict[Aggregate, None] = {}
    for feature in features.features:
        seen[feature.aggregate] = None
        for reference in references(feature):
            seen[reference] = None
    return list(seen)


def feature_columns(
    features: FeatureSet, compute: Callable[[Aggregate], np.ndarray]
) -> dict[str, np.ndarray]:
    """Every feature's column by name, ``compute`` giving each aggregate's values."""
    values = {aggregate: compute(aggregate) for aggregate in aggregates_of(features)}
    done: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for feature in features.features:
            column = values[feature.aggregate] * feature.scale
            if feature.minus is not None:
                column = column - _operand(feature.minus, values, done)
            if feature.ratio is not None:
                denominator = _operand(feature.ratio, values, done)
                column = np.where(denominator == 0, np.nan, column / denominator)
            if feature.transform == "log1p":
                column = np.sign(column) * np.log1p(np.abs(column))
            done[feature.name] = column.astype(float, copy=False)
    return done


def _operand(
    reference: Aggregate | str,
    values: dict[Aggregate, np.ndarray],
    done: dict[str, np.ndarray],
) -> np.ndarray:
    return done[reference] if isinstance(reference, str) else values[reference]
