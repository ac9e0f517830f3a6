"""What a retrain records to explain its version (the dashboard's importance and calibration
charts), on SQLite and PostgreSQL, after real retrains: every feature's importance, largest
first, and the calibration bins of the rows the decision model did not learn, in
``model_versions.details`` and in the artifact's ``metadata.json`` alike. And a champion, as
served, gives reason codes that agree with its served contributions."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pytest

from predelinq.config_tables import TrainingSettings
from predelinq.features.parse import configured_features
from predelinq.modeling.explain import contributions, importance, reason_codes
from predelinq.modeling.registry import ModelVersion, champion_version, get_version, load_champion
from predelinq.retraining.run import retrain
from predelinq.serving.score import for_serving, score
from support.factories import version_of
from support.synthetic import Loaded

EXPLAINED = ("importance", "calibration", "calibration_source")


def recorded(version: ModelVersion) -> dict[str, Any]:
    """The version's details as read from the database (they are JSON)."""
    return dict(version.details)


def sidecar(loaded: Loaded, version: ModelVersion) -> dict[str, Any]:
    path = (loaded.settings.model_dir / version.artifact_path).with_name("metadata.json")
    return dict(json.loads(path.read_text()))


def check_explained(details: dict[str, Any]) -> None:
    names = details["feature_names"]
    found = details["importance"]
    assert sorted(found) == sorted(names) and len(found) == len(names) > 10
    values = list(found.values())
    assert all(value >= 0 for value in values) and values[0] > 0
    assert values == sorted(values, reverse=True)

    assert details["calibration_source"] == "out_of_sample"
    deciles = details["calibration"]
    out_of_sample = details["fit"]["holdout"] + details["fit"]["validation"]
    assert out_of_sample > 0
    assert sum(decile["rows"] for decile in deciles) == out_of_sample
    # ties stay in one bin, and a model of few shallow trees (the seed is random) can give a
    # few hundred rows only a handful of distinct scores: CI once saw 4 bins
    assert 2 <= len(deciles) <= 10
    assert all(0 <= decile["observed_rate"] <= 1 for decile in deciles)
    means = [decile["mean_score"] for decile in deciles]
    assert means[0] > 0 and means == sorted(means) and means[-1] < 1
    # the riskiest tenth is more often delinquent than the safest (the model has skill)
    assert deciles[-1]["observed_rate"] > deciles[0]["observed_rate"]


def test_the_champion_records_its_importance_and_calibration(champion: Loaded) -> None:
    version = champion_version(champion.engine)
    assert version is not None
    details = recorded(version)
    assert details["fit"]["method"] == "cross_validation"
    assert details["fit"]["validation"] == 0  # out of sample: the holdout alone
    check_explained(details)
    stored = sidecar(champion, version)
    assert {key: stored[key] for key in EXPLAINED} == {key: details[key] for key in EXPLAINED}


def test_a_validated_version_calibrates_on_validation_and_holdout(loaded: Loaded) -> None:
    """Above cv_max_rows the decision model is the artifact: its out-of-sample rows are the
    validation part and the holdout."""
    large = loaded.settings.model_copy(update={"training": TrainingSettings(cv_max_rows=100)})
    result = retrain(loaded.engine, large, max_customers="all", seed=0)
    assert result.parts["method"] == "validation"
    with loaded.engine.connect() as connection:
        version = get_version(connection, version_of(result))
    details = recorded(version)
    assert details["fit"]["validation"] > 0 and details["fit"]["holdout"] > 0
    check_explained(details)
    stored = sidecar(loaded, version)
    assert {key: stored[key] for key in EXPLAINED} == {key: details[key] for key in EXPLAINED}


def test_the_served_champion_explains_a_customer(champion: Loaded) -> None:
    """The columns the champion is served with (``matrix[:, columns]``, its feature names)
    are what reason codes and importance take."""
    settings = champion.settings
    features = configured_features(settings)
    loaded = load_champion(champion.engine, settings.model_dir, features)
    assert loaded is not None
    model = for_serving(loaded, settings)
    ids = sorted(champion.data.customers["customer_id"].to_list())[:30]
    scored = score(champion.engine, settings, model, features, ids, date(2024, 10, 1), explain=True)
    assert scored.features is not None and scored.contributions is not None

    shares = contributions(model.booster, scored.features, threads=1)
    logits = np.log(scored.scores / (1 - scored.scores))
    assert np.abs(shares.sum(axis=1) - logits).max() < 1e-4
    described = {f.name: f.description for f in features.features}
    with_reasons = 0
    for i in range(len(ids)):
        reasons = reason_codes(model.booster, scored.features[i], model.feature_names, features)
        assert len(reasons) <= 4
        for reason in reasons:
            j = model.feature_names.index(reason.feature)
            assert reason.contribution == pytest.approx(scored.contributions[i, j], abs=1e-6)
            assert reason.contribution > 0
            assert reason.description == (described[reason.feature] or reason.feature)
        with_reasons += bool(reasons)
    assert with_reasons
    ranked = importance(model.booster, scored.features, model.feature_names, threads=1)
    assert list(ranked) != model.feature_names and sorted(ranked) == sorted(model.feature_names)
