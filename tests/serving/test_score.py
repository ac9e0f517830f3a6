"""One ``score`` for every path: the API's read over a pooled connection and the CLI's bulk
read (small, or large: on SQLite in a child process) give every customer the same score; the
risk band and the thread policy are the serving module's."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from predelinq.features.parse import configured_features
from predelinq.modeling.registry import load_champion
from predelinq.serving.score import for_serving, risk_band, risk_bands, score, score_customers
from support.synthetic import Loaded

AS_OF = date(2024, 10, 1)


@pytest.fixture
def served(champion: Loaded):
    settings = champion.settings
    features = configured_features(settings)
    loaded = load_champion(champion.engine, settings.model_dir, features)
    assert loaded is not None
    return for_serving(loaded, settings), features


def test_every_read_path_gives_the_same_scores(champion, served):
    model, features = served
    settings = champion.settings
    large = settings.model_copy(update={"large_read_customers": 1, "read_connections": 2})
    known = sorted(champion.data.customers["customer_id"].to_list())[:40]
    ids = [*known[:20], "nobody", *known[20:]]

    pooled = score(champion.engine, settings, model, features, ids, AS_OF, explain=True)
    small = score(champion.engine, settings, model, features, ids, AS_OF, bulk=True)
    big = score(champion.engine, large, model, features, ids, AS_OF, bulk=True)

    assert pooled.ids == small.ids == big.ids == known  # in the order asked, "nobody" left out
    assert np.array_equal(pooled.scores, small.scores) and np.array_equal(small.scores, big.scores)
    assert np.array_equal(pooled.newest_event_us, big.newest_event_us, equal_nan=True)
    assert pooled.features is not None and pooled.contributions is not None
    assert pooled.features.shape == pooled.contributions.shape == (40, len(model.columns))
    assert small.features is None and small.contributions is None  # not asked to explain


def test_the_score_command_scores_as_score_does(champion, served):
    model, features = served
    frame = score_customers(champion.engine, champion.settings, as_of=AS_OF, customer_ids=None)
    ids = frame["customer_id"].to_list()  # every customer first seen before AS_OF, sorted
    direct = score(champion.engine, champion.settings, model, features, ids, AS_OF)
    assert ids == sorted(ids) and len(ids) > 100 and direct.ids == ids
    assert frame["risk_score"].to_list() == direct.scores.tolist()
    assert set(frame["model_version"]) == {model.version}


def test_a_served_model_predicts_on_the_settings_threads(champion, served):
    model, _ = served
    config = json.loads(model.booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == str(champion.settings.threads)


def test_risk_bands_in_one_pass_agree_with_one_at_a_time():
    bands = (0.2, 0.5)
    scores = np.array([0.0, 0.1999, 0.2, 0.35, 0.4999, 0.5, 0.9, 1.0])
    assert risk_bands(scores, bands) == [risk_band(float(s), bands) for s in scores]
    assert risk_bands(scores, bands) == ["low"] * 2 + ["medium"] * 3 + ["high"] * 3
    assert risk_bands(np.empty(0), bands) == []
