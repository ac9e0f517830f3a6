"""Tests for model training: the split rules, threshold, metrics and real XGBoost fits.

The data is synthetic and small (about 2,500 rows of 500 customers over 8 monthly dates):
feature 0 and feature 1 raise the risk, a per-customer frailty ties a customer's rows
together, the other features are noise, and about 15% of the labels are positive.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, roc_curve

from predelinq.training import (
    Split,
    TrainingConfig,
    TrainingError,
    check_trainable,
    choose_threshold,
    evaluate,
    predict,
    split_observations,
    train_model,
)

NAMES = [f"f{i}" for i in range(8)]
PARTS = ("train", "validation", "test")
FAST = TrainingConfig(
    threads=1,  # a busy 2-core machine slows 2 OpenMP threads down up to 100x on tiny data
    num_boost_round=300,
    early_stopping_rounds=20,
    params={
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "eta": 0.1,
        "max_depth": 3,
        "min_child_weight": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
    },
)


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    customers: np.ndarray
    dates: np.ndarray  # datetime64[D], first of the month


def make_data(seed: int = 0, *, n_customers: int = 600, n_dates: int = 8, panel: bool = False):
    """Customers observed over a random run of consecutive months (every month if panel)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_dates - 1, n_customers)
    length = rng.integers(2, n_dates + 1, n_customers)
    if panel:
        first, length = np.zeros_like(first), np.full_like(length, n_dates)
    last = np.minimum(first + length, n_dates)
    cust = np.repeat(np.arange(n_customers), last - first)
    month = np.concatenate([np.arange(a, b) for a, b in zip(first, last, strict=True)])
    frailty = rng.normal(size=n_customers)[cust]
    X = rng.normal(size=(cust.size, len(NAMES)))
    X[:, 0] += 0.5 * frailty
    logit = -2.8 + 1.6 * X[:, 0] + 0.8 * X[:, 1] + 0.6 * frailty
    y = (rng.random(cust.size) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values everywhere, labels drawn before
    dates = (np.datetime64("2024-01", "M") + month).astype("datetime64[D]")
    return Data(X, y, cust.astype(np.int64) + 1000, dates)


def split(data: Data, config: TrainingConfig = FAST) -> Split:
    return split_observations(data.customers, data.dates, data.y, config=config)


def assert_parts_apart(data: Data, parts: Split) -> None:
    named = {"train": parts.train, "validation": parts.validation, "test": parts.test}
    for rows in named.values():
        assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0)
        assert data.y[rows].min() == 0 and data.y[rows].max() == 1
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        shared = set(data.customers[named[a]]) & set(data.customers[named[b]])
        assert not shared, f"customers in {a} and {b}: {sorted(shared)[:5]}"
        assert not set(named[a]) & set(named[b])


@pytest.fixture(scope="module")
def data() -> Data:
    return make_data()


@pytest.fixture(scope="module")
def trained(data: Data):
    return train_model(
        data.X,
        data.y,
        customer_ids=data.customers,
        observation_dates=data.dates,
        feature_names=NAMES,
        config=FAST,
    )


# ---- split ---------------------------------------------------------------------------------


def test_data_is_the_intended_size(data: Data) -> None:
    assert 1_500 <= data.y.size <= 3_000 and 0.10 < data.y.mean() < 0.20
    assert np.unique(data.dates).size == 8


def test_out_of_time_split_keeps_time_order_and_customers_apart(data: Data) -> None:
    parts = split(data)
    assert parts.kind == "out_of_time"
    assert_parts_apart(data, parts)
    test_from = np.datetime64(parts.test_from, "D")
    assert data.dates[parts.test].min() == test_from
    fit = np.r_[parts.train, parts.validation]
    assert data.dates[fit].max() < test_from
    # dropped: the test customers' earlier rows and the other customers' rows on the test dates
    late, in_test = data.dates >= test_from, np.isin(data.customers, data.customers[parts.test])
    dropped = np.setdiff1d(np.arange(data.y.size), np.r_[fit, parts.test])
    assert np.array_equal(dropped, np.flatnonzero((in_test & ~late) | (~in_test & late)))
    assert 0.12 < parts.test.size / data.y.size < 0.35
    assert 0.1 < parts.validation.size / fit.size < 0.3


def test_strict_out_of_time_split_tests_every_late_customer(data: Data) -> None:
    parts = split(data, replace(FAST, test_customer_share=1.0))
    assert_parts_apart(data, parts)
    test_from = np.datetime64(parts.test_from, "D")
    assert np.array_equal(parts.test, np.flatnonzero(data.dates >= test_from))
    # whole dates from the latest backwards until they hold >= 20% of the rows
    assert parts.test.size >= 0.2 * data.y.size
    assert np.count_nonzero(data.dates > test_from) < 0.2 * data.y.size
    # only the test customers' earlier rows are dropped
    kept = np.r_[parts.train, parts.validation, parts.test]
    dropped = np.setdiff1d(np.arange(data.y.size), kept)
    earlier_of_test = np.isin(data.customers, data.customers[parts.test]) & (data.dates < test_from)
    assert np.array_equal(dropped, np.flatnonzero(earlier_of_test))


def test_two_dates_give_a_grouped_split_that_drops_nothing(data: Data) -> None:
    two = make_data(n_customers=1_200, n_dates=2)
    parts = split(two)
    assert parts.kind == "grouped" and parts.test_from is None
    assert_parts_apart(two, parts)
    everything = np.sort(np.r_[parts.train, parts.validation, parts.test])
    assert np.array_equal(everything, np.arange(two.y.size))
    assert 0.15 < parts.test.size / two.y.size < 0.25


def test_panel_data_keeps_enough_to_train_unless_strict() -> None:
    panel = make_data(n_customers=300, panel=True)
    parts = split(panel)
    assert_parts_apart(panel, parts)
    assert (parts.train.size + parts.validation.size) / panel.y.size >= 0.2
    with pytest.raises(TrainingError, match=r"train and validation part is empty \(0 rows\)"):
        split(panel, replace(FAST, test_customer_share=1.0))


def test_split_is_deterministic_per_seed_and_ignores_row_order(data: Data) -> None:
    a, b, other = split(data), split(data), split(data, replace(FAST, seed=7))
    for part in PARTS:
        assert np.array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, other.test)
    order = np.random.default_rng(3).permutation(data.y.size)
    shuffled = Data(data.X[order], data.y[order], data.customers[order], data.dates[order])
    c = split(shuffled)
    for part in PARTS:
        assert np.array_equal(np.sort(order[getattr(c, part)]), getattr(a, part))


def test_dates_as_python_dates_and_ids_as_strings_give_the_same_split(data: Data) -> None:
    dates = np.array([d.item() for d in data.dates], dtype=object)
    ids = np.array([f"C{c:06d}" for c in data.customers], dtype=object)
    a, b = split(data), split_observations(ids, dates, data.y, config=FAST)
    assert isinstance(b.test_from, dt.date) and b.test_from == a.test_from
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)


def test_a_test_part_with_one_class_raises(data: Data) -> None:
    y = data.y.copy()
    y[data.dates >= np.datetime64(split(data).test_from, "D")] = 0
    with pytest.raises(TrainingError, match=r"test part has only one class \(0 positives in \d+"):
        split_observations(data.customers, data.dates, y, config=FAST)


def test_a_split_without_two_positive_customers_raises() -> None:
    two = make_data(n_customers=400, n_dates=2)
    y = np.zeros_like(two.y)
    y[two.customers == two.customers[0]] = 1
    with pytest.raises(TrainingError, match=r"cannot split 400 customers \(1 with a positive"):
        split_observations(two.customers, two.dates, y, config=FAST)


# ---- threshold and metrics -----------------------------------------------------------------


def brute_force_threshold(y: np.ndarray, s: np.ndarray) -> float:
    best, best_f1 = math.inf, -1.0
    for t in np.unique(s)[::-1]:  # highest first: a later candidate must be strictly better
        f1 = f1_score(y, (s >= t).astype(int), zero_division=0)
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), f1
    return best


def test_choose_threshold_by_hand() -> None:
    y = np.array([1, 0, 1, 0])
    assert choose_threshold(y, np.array([0.9, 0.8, 0.7, 0.1])) == 0.7  # F1 0.8
    # F1 2/3 at 0.9 and at 0.4: the tie goes to the highest threshold
    assert choose_threshold(np.array([1, 0, 0, 1]), np.array([0.9, 0.6, 0.5, 0.4])) == 0.9


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=1, max_size=40).filter(
        lambda rows: any(label for label, _ in rows)
    )
)
def test_choose_threshold_matches_a_brute_force_f1_maximiser(rows) -> None:
    y = np.array([label for label, _ in rows])
    s = np.array([score / 12 for _, score in rows])  # few distinct values: many ties
    assert choose_threshold(y, s) == brute_force_threshold(y, s)


def test_evaluate_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.6, 0.05])
    m = evaluate(y, s, 0.5)  # flags 0.9, 0.8, 0.7, 0.6: TP 2, FP 2, FN 1
    assert m["precision"] == 0.5
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["auc"] == pytest.approx(13 / 15)  # 13 of 15 positive-negative pairs in order
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 5) / 3)
    assert m["brier"] == pytest.approx(np.mean((s - y) ** 2))
    assert m["ks"] == pytest.approx(2 / 3)  # after 0.8: TPR 2/3, FPR 0
    fpr, tpr, _ = roc_curve(y, s)
    assert m["ks"] == pytest.approx(np.max(tpr - fpr))
    assert (m["rows"], m["positives"], m["positive_rate"]) == (8, 3, 0.375)
    expected = {"auc", "pr_auc", "precision", "recall", "f1", "brier", "ks", "rows"}
    assert set(m) == expected | {"positives", "positive_rate"}


def test_evaluate_with_one_class_gives_nan_rankings() -> None:
    m = evaluate(np.zeros(4), np.array([0.1, 0.2, 0.6, 0.3]), 0.5)
    assert all(math.isnan(m[key]) for key in ("auc", "pr_auc", "ks"))
    assert (m["precision"], m["recall"], m["f1"], m["positives"]) == (0, 0, 0, 0)
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.09) / 4)


# ---- trainability --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.r_[np.ones(20), np.zeros(30)], r"too few labelled rows: 50 \(need at least 100\)"),
        (np.zeros(200), r"only one class \(0 positives in 200 rows\)"),
        (np.r_[np.ones(5), np.zeros(195)], r"5 positives and 195 negatives in 200 rows"),
        (np.r_[np.ones(195), np.zeros(5)], r"195 positives and 5 negatives in 200 rows"),
        (np.r_[np.ones(50), np.zeros(149), np.nan], r"1 of 200 rows are not"),
    ],
)
def test_check_trainable_names_the_counts(labels: np.ndarray, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        check_trainable(labels, TrainingConfig())


def test_train_model_refuses_too_few_positives(data: Data) -> None:
    y = np.zeros_like(data.y)
    y[:3] = 1
    with pytest.raises(TrainingError, match="3 positives"):
        train_model(
            data.X,
            y,
            customer_ids=data.customers,
            observation_dates=data.dates,
            feature_names=NAMES,
            config=FAST,
        )


# ---- real XGBoost fits ---------------------------------------------------------------------


def test_train_model_learns_the_signal(trained, data: Data) -> None:
    assert trained.metrics["auc"] > 0.75 and trained.validation_metrics["auc"] > 0.75
    assert trained.metrics["rows"] == trained.split.test.size
    assert 0 < trained.threshold < 1 and trained.metrics["f1"] > 0.3
    assert trained.booster.feature_names == NAMES and trained.feature_names == NAMES
    assert trained.best_iteration + 1 < trained.booster.num_boosted_rounds()  # stopped early
    again = split(data)
    assert trained.split.test_from == again.test_from
    assert all(np.array_equal(getattr(trained.split, p), getattr(again, p)) for p in PARTS)


def test_shuffled_labels_learn_nothing(data: Data) -> None:
    y = np.random.default_rng(5).permutation(data.y)
    result = train_model(
        data.X,
        y,
        customer_ids=data.customers,
        observation_dates=data.dates,
        feature_names=NAMES,
        config=FAST,
    )
    assert 0.38 < result.metrics["auc"] < 0.62


def test_predict_matches_the_booster_up_to_the_best_iteration(trained, data: Data) -> None:
    booster = trained.booster
    matrix = xgb.DMatrix(data.X, label=data.y, missing=np.nan, feature_names=NAMES, nthread=1)
    best = booster.predict(matrix, iteration_range=(0, trained.best_iteration + 1))
    scores = predict(booster, data.X, threads=1)
    assert np.abs(scores - best).max() < 1e-6
    assert np.abs(scores - booster.predict(matrix)).max() > 1e-4  # all rounds differ
    plain = xgb.train({"nthread": 1, "objective": "binary:logistic"}, matrix, 3)
    assert np.abs(predict(plain, data.X, threads=1) - plain.predict(matrix)).max() < 1e-6


def test_renamed_customers_give_the_same_model(trained, data: Data) -> None:
    """Invariance: customer ids are opaque keys (renamed in the same order: same split)."""
    ids = np.array([f"C{c:06d}" for c in data.customers], dtype=object)
    result = train_model(
        data.X,
        data.y,
        customer_ids=ids,
        observation_dates=data.dates,
        feature_names=NAMES,
        config=FAST,
    )
    assert np.array_equal(
        predict(result.booster, data.X, threads=1), predict(trained.booster, data.X, threads=1)
    )
    assert result.threshold == trained.threshold


def test_higher_feature_0_means_higher_risk(trained, data: Data) -> None:
    """Direction: the top decile of feature 0 scores riskier than the bottom decile."""
    scores, f0 = predict(trained.booster, data.X, threads=1), data.X[:, 0]
    low, high = np.nanquantile(f0, [0.1, 0.9])
    assert scores[f0 >= high].mean() > 2 * scores[f0 <= low].mean()


def test_monotone_constraint_is_honoured(data: Data) -> None:
    params = {**FAST.params, "monotone_constraints": "(1,0,0,0,0,0,0,0)"}
    result = train_model(
        data.X,
        data.y,
        customer_ids=data.customers,
        observation_dates=data.dates,
        feature_names=NAMES,
        config=replace(FAST, params=params),
    )
    raised = data.X.copy()
    raised[:, 0] = np.nan_to_num(raised[:, 0]) + 0.5
    lowered = raised.copy()
    lowered[:, 0] -= 1.0
    assert np.all(
        predict(result.booster, raised, threads=1) >= predict(result.booster, lowered, threads=1)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_scikit_learn(seed):
    from sklearn import metrics

    rng = np.random.default_rng(seed)
    y_true = (rng.random(500) < 0.2).astype(int)
    # rounded scores: many ties, which is where hand-written ranking metrics go wrong
    y_score = np.round(np.clip(0.3 * y_true + rng.random(500) * 0.8, 0, 1), 2)
    ours = evaluate(y_true, y_score, 0.5)
    flagged = (y_score >= 0.5).astype(int)
    fpr, tpr, _ = metrics.roc_curve(y_true, y_score)
    expected = {
        "auc": metrics.roc_auc_score(y_true, y_score),
        "pr_auc": metrics.average_precision_score(y_true, y_score),
        "precision": metrics.precision_score(y_true, flagged, zero_division=0),
        "recall": metrics.recall_score(y_true, flagged, zero_division=0),
        "f1": metrics.f1_score(y_true, flagged, zero_division=0),
        "brier": metrics.brier_score_loss(y_true, y_score),
        "ks": np.max(np.abs(tpr - fpr)),
    }
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
