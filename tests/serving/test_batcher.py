"""The /predict micro-batcher: customers scored together get exactly what each gets alone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from predelinq.features.parse import configured_features
from predelinq.modeling.registry import Champion, load_champion
from predelinq.retraining.run import retrain
from predelinq.serving.batcher import PredictionBatcher
from predelinq.serving.score import for_serving

AS_OF = date(2024, 10, 1)


@pytest.fixture
def scoring(loaded):
    """A batcher over the standard lender, a way to train and load a new model, the first 12
    customers, and the batch sizes observed. (This module's only, so it stays here.)"""
    database, data = loaded.database, loaded.data
    settings = loaded.settings.model_copy(update={"threads": 1})

    def model(reason: str) -> Champion:
        version = retrain(database.engine, settings, reason=reason, force=True).model_version
        champion = load_champion(database.engine, settings.model_dir, features)
        assert champion is not None and champion.version == version
        return for_serving(champion, settings)

    features = configured_features(settings)
    sizes = Histogram("batch", "sizes", registry=CollectorRegistry(), buckets=(1, 8, 64))
    batcher = PredictionBatcher(database.engine, settings, features, sizes)
    ids = data.customers["customer_id"].to_list()[:12]
    return batcher, model, ids, sizes


def _score_all(batcher, requests):
    async def together():
        scores = asyncio.gather(*(batcher.score(c, day, m) for c, day, m in requests))
        return await asyncio.wait_for(scores, timeout=60)  # a request left waiting fails

    return asyncio.run(together())


def _same(a, b) -> bool:
    return (
        a.score == b.score
        and np.array_equal(a.features, b.features, equal_nan=True)
        and np.array_equal(a.contributions, b.contributions)
    )


@pytest.mark.parametrize("max_batch", [256, 2])  # 2: every group split into model calls
def test_a_batch_gives_each_customer_what_it_gets_alone(scoring, monkeypatch, max_batch):
    monkeypatch.setattr("predelinq.serving.batcher.MAX_BATCH", max_batch)
    batcher, model, ids, sizes = scoring
    first, second = model("first"), model("second")
    requests = [
        *[(c, AS_OF, first) for c in ids],
        (ids[0], AS_OF, first),  # asked twice in one batch
        ("nobody", AS_OF, first),
        *[(c, date(2024, 6, 1), first) for c in ids[:3]],  # another date
        *[(c, AS_OF, second) for c in ids[:3]],  # a model swapped in meanwhile
    ]
    together = _score_all(batcher, requests)
    alone = [_score_all(batcher, [request])[0] for request in requests]

    assert together[len(ids) + 1] is None and alone[len(ids) + 1] is None
    pairs = [(a, b) for a, b in zip(together, alone, strict=True) if a is not None]
    assert len(pairs) == len(requests) - 1
    assert all(_same(a, b) for a, b in pairs)
    # the second model scores differently from the first: the groups were not mixed
    assert any(together[i].score != together[-3 + i].score for i in range(3))
    observed = {s.name: s.value for s in sizes.collect()[0].samples}
    assert observed["batch_count"] == 1 + len(requests)  # one flush for all, then one each
    assert observed["batch_sum"] == 2 * len(requests)


def test_a_failing_batch_fails_every_request_in_it_and_the_next_one_works(scoring):
    import xgboost

    batcher, model, ids, _ = scoring
    good = model("good")
    rng = np.random.default_rng(0)
    three_features = xgboost.train(
        {"objective": "binary:logistic"},
        xgboost.DMatrix(rng.random((50, 3)), label=rng.integers(0, 2, 50)),
        num_boost_round=2,
    )  # a real model that cannot take our features
    every = list(range(len(batcher.features.names)))
    bad = replace(
        good, booster=three_features, columns=every, feature_names=list(batcher.features.names)
    )

    async def together():
        scores = (batcher.score(c, AS_OF, bad) for c in ids[:3])
        return await asyncio.wait_for(asyncio.gather(*scores, return_exceptions=True), 60)

    errors = asyncio.run(together())
    assert len(errors) == 3
    assert all(isinstance(e, ValueError) and "shape mismatch" in str(e) for e in errors)
    assert _score_all(batcher, [(ids[0], AS_OF, good)])[0].score > 0
