"""The historical engine computed in parallel groups of customers gives, to the last bit, what
it gives in one pass."""

from __future__ import annotations

import polars as pl
import pytest

from predelinq.features import feature_set, features_for_observations, historical
from predelinq.synth import generate


@pytest.mark.parametrize("threads", [2, 3])
def test_parts_equal_one_pass(monkeypatch, threads):
    data = generate(n_customers=150, seed=17)
    inputs = {"customers": data.customers, "transactions": data.transactions}
    inputs["payments"] = data.payments
    observations = data.labels.select("customer_id", "observation_date").sample(
        fraction=1.0, shuffle=True, seed=1
    )
    features = feature_set()
    whole = features_for_observations(observations, dict(inputs), features)
    monkeypatch.setattr(historical, "PARALLEL_MIN_OBSERVATIONS", 1)
    parts = features_for_observations(observations, dict(inputs), features, threads=threads)
    assert parts.equals(whole, null_equal=True)
    assert whole.height == observations.height
    assert whole.select(pl.all().exclude("customer_id", "observation_date").is_nan().all()).row(
        0
    ) != (True,) * len(features.names)
