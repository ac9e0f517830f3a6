"""Tests for model explanations: SHAP contributions, importance, calibration bins and reason
codes, on tiny real XGBoost models trained here.

The data is synthetic: feature ``strong`` drives the risk, ``weak`` a little, the others are
noise; a missing ``strong`` means a high risk (so a missing value can be a reason).
"""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from predelinq.features.declarations import Aggregate, Feature, FeatureSet
from predelinq.modeling.booster import predict
from predelinq.modeling.explain import (
    IMPORTANCE_ROWS,
    Decile,
    Reason,
    calibration,
    contributions,
    importance,
    reason_codes,
)

NAMES = ["noise_a", "weak", "noise_b", "strong", "noise_c"]
STRONG, WEAK = NAMES.index("strong"), NAMES.index("weak")
DESCRIPTIONS = {"strong": "Days late on the last statement", "weak": "Cash withdrawals"}


def make_data(seed: int = 0, rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(NAMES)))
    logit = -1.0 + 2.5 * X[:, STRONG] + 0.5 * X[:, WEAK]
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    missing = rng.random(rows) < 0.1
    X[missing, STRONG] = np.nan
    y[missing] = (rng.random(int(missing.sum())) < 0.9).astype(float)
    X[rng.random(X.shape) < 0.03] = np.nan  # missing values elsewhere too
    return X, y


def train(X: np.ndarray, y: np.ndarray, *, names: list[str] | None = None) -> xgb.Booster:
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1}
    matrix = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=names)
    return xgb.train(params, matrix, num_boost_round=40)


def margins(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    matrix = xgb.DMatrix(X, missing=np.nan, feature_names=booster.feature_names)
    return np.asarray(booster.predict(matrix, output_margin=True))


def table(deciles: list[Decile]) -> np.ndarray:
    """Each bin as (mean score, observed rate, rows): for pytest.approx."""
    return np.array([(d.mean_score, d.observed_rate, d.rows) for d in deciles], dtype=float)


def feature_set() -> FeatureSet:
    count = Aggregate(source="payments", agg="count")
    return FeatureSet(
        tuple(Feature(name, count, description=DESCRIPTIONS.get(name, "")) for name in NAMES)
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_data()


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> xgb.Booster:
    return train(*data, names=NAMES)


# --- contributions ---------------------------------------------------------------------------


def test_contributions_add_up_to_the_margin(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    X, _ = data
    values = contributions(booster, X, threads=1)
    assert values.shape == (X.shape[0], len(NAMES) + 1)
    assert np.abs(values.sum(axis=1) - margins(booster, X)).max() < 1e-4
    served = predict(booster, X, threads=1)  # the score the API serves
    assert np.abs(values.sum(axis=1) - np.log(served / (1 - served))).max() < 1e-4


def test_contributions_of_a_booster_without_names(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    unnamed = train(X[:800], y[:800])
    assert unnamed.feature_names is None
    values = contributions(unnamed, X[:50], threads=1)
    assert np.abs(values.sum(axis=1) - margins(unnamed, X[:50])).max() < 1e-4


def test_contributions_of_a_sliced_booster(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    """The validation method's decision model is a slice of the trees it grew."""
    X, _ = data
    sliced = booster[:12]
    values = contributions(sliced, X[:200], threads=1)
    assert np.abs(values.sum(axis=1) - margins(sliced, X[:200])).max() < 1e-4
    assert np.abs(values - contributions(booster, X[:200], threads=1)).max() > 1e-3


def test_contributions_refuse_the_wrong_width_and_take_no_rows(booster: xgb.Booster) -> None:
    with pytest.raises(ValueError, match="5 columns"):
        contributions(booster, np.zeros((3, 4)), threads=1)
    assert contributions(booster, np.empty((0, len(NAMES))), threads=1).shape == (0, 6)


def test_contributions_leave_the_boosters_threads_alone(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """A served booster is shared by the API's threads: explaining never sets its params."""
    X, y = data
    served = train(X[:800], y[:800], names=NAMES)
    served.set_param("nthread", "2")
    before = served.save_config()
    contributions(served, X[:10], threads=1)
    assert served.save_config() == before


# --- importance ------------------------------------------------------------------------------


def test_importance_ranks_the_planted_feature_first(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    X, _ = data
    values = importance(booster, X, NAMES, threads=1, max_rows=X.shape[0])
    assert list(values)[:2] == ["strong", "weak"]
    assert set(values) == set(NAMES)
    assert all(v >= 0 for v in values.values())
    assert list(values.values()) == sorted(values.values(), reverse=True)
    # the mean |contribution| over every row, by hand
    by_hand = np.abs(contributions(booster, X, threads=1)[:, :-1]).mean(axis=0)
    assert values == pytest.approx(dict(zip(NAMES, by_hand.tolist(), strict=True)))


def test_importance_samples_rows_by_seed(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    X, _ = data
    whole = importance(booster, X, NAMES, threads=1, max_rows=X.shape[0])
    sampled = importance(booster, X, NAMES, threads=1, max_rows=500, seed=3)
    assert sampled == importance(booster, X, NAMES, threads=1, max_rows=500, seed=3)
    assert sampled != importance(booster, X, NAMES, threads=1, max_rows=500, seed=4)
    assert sampled != whole
    assert list(sampled)[0] == "strong"
    assert importance(booster, X, NAMES, threads=1, max_rows=X.shape[0] + 1) == whole
    assert X.shape[0] > IMPORTANCE_ROWS  # the default samples, with seed 0
    default = importance(booster, X, NAMES, threads=1)
    assert default == importance(booster, X, NAMES, threads=1, max_rows=IMPORTANCE_ROWS, seed=0)
    assert default != whole


def test_importance_checks_the_names(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    X, _ = data
    with pytest.raises(ValueError, match="feature names"):
        importance(booster, X, list(reversed(NAMES)), threads=1)
    with pytest.raises(ValueError, match="names"):
        importance(booster, X, NAMES[:4], threads=1)
    assert importance(booster, X[:0], NAMES, threads=1) == {}


# --- calibration -----------------------------------------------------------------------------


def test_calibration_by_hand() -> None:
    scores = np.array([0.8, 0.1, 0.4, 0.9, 0.35, 0.2])
    labels = np.array([1, 0, 1, 0, 0, 0])
    # sorted: 0.1 (0), 0.2 (0) | 0.35 (0), 0.4 (1) | 0.8 (1), 0.9 (0)
    deciles = calibration(scores, labels, bins=3)
    assert table(deciles) == pytest.approx(
        np.array([(0.15, 0.0, 2), (0.375, 0.5, 2), (0.85, 0.5, 2)])
    )
    assert all(isinstance(d.rows, int) for d in deciles)
    assert calibration(scores, labels, bins=3)[1].as_json() == {
        "mean_score": pytest.approx(0.375),
        "observed_rate": 0.5,
        "rows": 2,
    }


def test_calibration_deciles_are_equal_counts() -> None:
    rng = np.random.default_rng(1)
    scores, labels = rng.random(25), (rng.random(25) < 0.3).astype(int)
    deciles = calibration(scores, labels)
    assert [d.rows for d in deciles] == [2, 3] * 5
    means = [d.mean_score for d in deciles]
    assert means == sorted(means)
    positives = sum(d.observed_rate * d.rows for d in deciles)
    assert positives == pytest.approx(labels.sum())


def test_calibration_keeps_ties_in_one_bin() -> None:
    scores = np.array([0.5, 0.2, 0.9, 0.2, 0.5, 0.2])
    labels = np.array([1, 0, 1, 1, 0, 0])
    # cuts at rows 2 and 4 of 0.2 0.2 0.2 | 0.5 0.5 0.9 would split both ties
    deciles = calibration(scores, labels, bins=3)
    assert table(deciles) == pytest.approx(np.array([(0.2, 1 / 3, 3), (1.9 / 3, 2 / 3, 3)]))
    rng = np.random.default_rng(0)
    for _ in range(20):  # the order of the rows never matters
        order = rng.permutation(scores.size)
        assert calibration(scores[order], labels[order], bins=3) == deciles
    constant = calibration(np.full(7, 0.3), np.array([1, 0, 0, 0, 1, 0, 0]))
    assert table(constant) == pytest.approx(np.array([(0.3, 2 / 7, 7)]))


def test_calibration_of_few_rows_and_none() -> None:
    deciles = calibration(np.array([0.7, 0.1, 0.4]), np.array([1, 0, 0]))
    assert deciles == [Decile(0.1, 0.0, 1), Decile(0.4, 0.0, 1), Decile(0.7, 1.0, 1)]
    assert calibration(np.empty(0), np.empty(0)) == []
    one = calibration(np.array([0.2, 0.6]), np.array([0, 1]), bins=1)
    assert table(one) == pytest.approx(np.array([(0.4, 0.5, 2)]))


def test_calibration_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        calibration(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="finite"):
        calibration(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="a row"):
        calibration(np.array([0.1, 0.2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="bins"):
        calibration(np.array([0.1]), np.array([0]), bins=0)


# --- reason codes ----------------------------------------------------------------------------


def test_reason_codes_are_the_largest_positive_contributions(
    data: tuple[np.ndarray, np.ndarray], booster: xgb.Booster
) -> None:
    X, _ = data
    values = contributions(booster, X, threads=1)[:, :-1]
    features = feature_set()
    checked = 0
    for i in range(60):
        reasons = reason_codes(booster, X[i], NAMES, features, k=2)
        assert len(reasons) <= 2
        assert all(r.contribution > 0 for r in reasons)
        assert [r.contribution for r in reasons] == sorted(
            (r.contribution for r in reasons), reverse=True
        )
        everything = reason_codes(booster, X[i], NAMES, features, k=len(NAMES))
        positive = {NAMES[j] for j in np.flatnonzero(values[i] > 0)}
        assert {r.feature for r in everything} == positive
        assert reasons == everything[:2]
        for r in everything:
            j = NAMES.index(r.feature)
            assert r.contribution == pytest.approx(values[i, j], abs=1e-6)
            assert r.value == (None if np.isnan(X[i, j]) else X[i, j])
        checked += len(everything) > 2
    assert checked  # some rows had more reasons than k


def test_reason_codes_speak_the_registrys_words(booster: xgb.Booster) -> None:
    risky = np.array([0.0, 3.0, 0.0, 2.5, 0.0])  # strong and weak both high
    reasons = reason_codes(booster, risky, NAMES, feature_set(), k=4)
    assert [r.feature for r in reasons[:2]] == ["strong", "weak"]
    assert reasons[0] == Reason(
        "strong", "Days late on the last statement", 2.5, reasons[0].contribution
    )
    assert reasons[1].description == "Cash withdrawals"
    undescribed = [r for r in reasons if r.feature.startswith("noise")]
    assert all(r.description == r.feature for r in undescribed)
    # a feature the registry no longer declares is its own description
    fewer = FeatureSet(tuple(f for f in feature_set().features if f.name != "strong"))
    assert reason_codes(booster, risky, NAMES, fewer, k=1)[0].description == "strong"
    safe = np.array([0.0, -3.0, 0.0, -2.5, 0.0])
    assert all(r.feature.startswith("noise") for r in reason_codes(booster, safe, NAMES, fewer))


def test_a_missing_value_is_a_reason_without_a_value(booster: xgb.Booster) -> None:
    row = np.array([[0.0, 0.0, 0.0, np.nan, 0.0]])  # missing strong: high risk, as trained
    reasons = reason_codes(booster, row, NAMES, feature_set())
    assert reasons[0].feature == "strong"
    assert reasons[0].value is None
    assert reasons[0].contribution > 0.5
    assert reasons[0].as_json() == {
        "feature": "strong",
        "description": "Days late on the last statement",
        "value": None,
        "contribution": reasons[0].contribution,
    }


def test_reason_codes_take_one_row(booster: xgb.Booster) -> None:
    with pytest.raises(ValueError, match="one row"):
        reason_codes(booster, np.zeros((2, len(NAMES))), NAMES, feature_set())
    assert reason_codes(booster, np.zeros(len(NAMES)), NAMES, feature_set(), k=0) == []
