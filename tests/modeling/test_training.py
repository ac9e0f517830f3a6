"""Tests for model training: the holdout, the folds, both fitting methods, the threshold, the
metrics and real XGBoost fits.

The data is synthetic and small (about 2,300 rows of 600 customers over 8 monthly dates):
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
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

from predelinq.errors import TrainingError
from predelinq.modeling.booster import contributions, predict
from predelinq.modeling.fit import (
    Challenger,
    TrainingConfig,
    check_trainable,
    default_params,
    fit_challenger,
    fit_params,
    train_rounds,
)
from predelinq.modeling.metrics import choose_threshold, evaluate, same_score_share
from predelinq.modeling.split import customer_codes, holdout_rows, time_blocked_folds
from predelinq.retraining.gate import Scored, cross_validated_auc

NAMES = [f"f{i}" for i in range(8)]
FAST = TrainingConfig(
    threads=1,  # a busy 2-core machine slows 2 OpenMP threads down up to 100x on tiny data
    num_boost_round=150,
    early_stopping_rounds=15,
)
# no row or column sampling: a fold's model can be trained again, tree for tree
EXACT = replace(FAST, params={**default_params(), "subsample": 1.0, "colsample_bytree": 1.0})
METRIC_KEYS = {"auc", "pr_auc", "precision", "recall", "f1", "brier", "ks", "rows"} | {
    "positives",
    "positive_rate",
}


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    customers: np.ndarray
    dates: np.ndarray  # datetime64[D], first of the month

    def rows(self, order: np.ndarray) -> Data:
        return Data(self.X[order], self.y[order], self.customers[order], self.dates[order])


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


def everyone(data: Data) -> np.ndarray:
    return np.ones(data.y.size, dtype=bool)


def hold_out(data: Data, share: float = 0.2, seed: int = 0) -> np.ndarray:
    return holdout_rows(
        data.customers, data.dates, data.y, eligible=everyone(data), share=share, seed=seed
    )


def fit(data: Data, holdout: np.ndarray, config: TrainingConfig = FAST, **kw) -> Challenger:
    return fit_challenger(
        data.X,
        kw.pop("y", data.y),
        customer_ids=kw.pop("customer_ids", data.customers),
        observation_dates=data.dates,
        holdout=holdout,
        feature_names=NAMES,
        config=config,
    )


def customer_keys(customers: np.ndarray, dates: np.ndarray) -> dict:
    """Each customer's (latest, first) observation day: larger is newer."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    keys = {}
    for customer in np.unique(customers):
        mine = days[customers == customer]
        keys[customer] = (int(mine.max()), int(mine.min()))
    return keys


def assert_whole_customers_apart(customers: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    assert not set(a) & set(b), "a row on both sides"
    shared = set(customers[a]) & set(customers[b])
    assert not shared, f"customers on both sides: {sorted(shared)[:5]}"


@pytest.fixture(scope="module")
def data() -> Data:
    return make_data()


@pytest.fixture(scope="module")
def holdout(data: Data) -> np.ndarray:
    return hold_out(data)


@pytest.fixture(scope="module")
def challenger(data: Data, holdout: np.ndarray) -> Challenger:
    return fit(data, holdout)


@pytest.fixture(scope="module")
def validated(data: Data, holdout: np.ndarray) -> Challenger:
    return fit(data, holdout, replace(FAST, cv_max_rows=1_000))


@pytest.fixture(scope="module")
def artifact(data: Data, challenger: Challenger) -> xgb.Booster:
    return train_rounds(data.X, data.y, challenger.rounds, NAMES, FAST)


def test_data_is_the_intended_size(data: Data) -> None:
    assert 1_500 <= data.y.size <= 3_000 and 0.10 < data.y.mean() < 0.20
    assert np.unique(data.dates).size == 8


# ---- holdout -------------------------------------------------------------------------------

# six customers, rows shuffled: (id, months observed 1 = Jan, eligible)
SMALL = [
    ("A", [1, 2], True),  # latest Feb, first Jan
    ("B", [3], True),  # latest Mar, first Mar: the newest
    ("C", [1, 2, 3], True),  # latest Mar, first Jan
    ("D", [2, 3], False),  # latest Mar, first Feb
    ("E", [1], True),
    ("F", [2], True),  # latest Feb, first Feb
]  # ten rows; eligible newest first: B, C, F, A, E


def small_rows(eligible_too: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = [c for c, months, _ in SMALL for _ in months]
    dates = [np.datetime64(f"2024-{m:02d}-01") for _, months, _ in SMALL for m in months]
    eligible = [ok or c in eligible_too for c, months, ok in SMALL for _ in months]
    order = np.random.default_rng(1).permutation(len(ids))
    return np.array(ids)[order], np.array(dates)[order], np.array(eligible)[order]


@pytest.mark.parametrize(
    ("share", "eligible_too", "expected"),
    [
        (0.1, "", "B"),  # B's one row reaches 1 of 10 exactly
        (0.3, "", "BC"),  # 1 row is short of 3: C tips it over (4 rows)
        (0.4, "", "BC"),  # 4 rows reach 4 exactly
        (0.45, "", "BCF"),
        (0.7, "", "BCFA"),  # 7 rows
        (0.95, "", "ABCEF"),  # every eligible row (8) is short of 9.5: all of them
        (0.3, "D", "BD"),  # D (first Feb) is newer than C (first Jan): 1 + 2 = 3 rows
        (0.0, "", ""),
    ],
)
def test_holdout_takes_the_newest_eligible_customers_by_hand(share, eligible_too, expected):
    ids, dates, eligible = small_rows(eligible_too)
    rows = holdout_rows(ids, dates, np.zeros(ids.size), eligible=eligible, share=share, seed=0)
    assert rows.dtype == np.int64
    assert np.array_equal(rows, np.flatnonzero(np.isin(ids, list(expected))))


def test_holdout_is_empty_without_eligible_customers(data: Data) -> None:
    nobody = np.zeros(data.y.size, dtype=bool)
    rows = holdout_rows(data.customers, data.dates, data.y, eligible=nobody, share=0.2, seed=0)
    assert rows.size == 0
    assert hold_out(data, share=0.0).size == 0


@st.composite
def panels(draw):
    """A few customers with runs of months, some eligible, rows in any order."""
    count = draw(st.integers(1, 12))
    runs = draw(
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(1, 4), st.booleans()),
            min_size=count,
            max_size=count,
        )
    )
    ids = np.array([f"C{i}" for i, (first, n, _) in enumerate(runs) for _ in range(n)])
    months = np.array([first + k for first, n, _ in runs for k in range(n)])
    eligible = np.array([ok for _, n, ok in runs for _ in range(n)])
    order = np.array(draw(st.permutations(range(ids.size))))
    dates = (np.datetime64("2024-01", "M") + months).astype("datetime64[D]")
    return ids[order], dates[order], eligible[order]


@settings(max_examples=150, deadline=None)
@given(panels(), st.floats(0.0, 0.99), st.integers(0, 3))
def test_holdout_properties(panel, share: float, seed: int) -> None:
    ids, dates, eligible = panel
    rows = holdout_rows(ids, dates, np.zeros(ids.size), eligible=eligible, share=share, seed=seed)
    assert np.all(np.diff(rows) > 0)
    held, candidates = set(ids[rows]), set(ids[eligible])
    assert held <= candidates  # only eligible customers
    assert np.array_equal(rows, np.flatnonzero(np.isin(ids, list(held))))  # whole customers
    if share == 0 or not candidates:
        assert rows.size == 0
        return
    keys = customer_keys(ids, dates)
    left = candidates - held
    if left:  # the newest: every held customer is at least as new as every one left
        assert min(keys[c] for c in held) >= max(keys[c] for c in left)
        assert rows.size >= share * ids.size  # ...taken until they reach the share
    # the last customer taken (one of the oldest held) tipped it over: without it, short
    oldest = min(keys[c] for c in held)
    last = [c for c in held if keys[c] == oldest]
    assert any(rows.size - np.count_nonzero(ids == c) < share * ids.size for c in last)


def test_holdout_is_deterministic_per_seed_and_ignores_row_order(data: Data) -> None:
    a, b = hold_out(data), hold_out(data)
    assert np.array_equal(a, b)
    # many customers share their first and latest month: the seed breaks the ties
    assert any(not np.array_equal(a, hold_out(data, seed=seed)) for seed in range(1, 4))
    order = np.random.default_rng(3).permutation(data.y.size)
    assert np.array_equal(np.sort(order[hold_out(data.rows(order))]), a)
    # string ids (in the same sorted order) and Python dates: the same customers
    ids = np.array([f"C{c:06d}" for c in data.customers], dtype=object)
    dates = np.array([d.item() for d in data.dates], dtype=object)
    assert isinstance(dates[0], dt.date)
    c = holdout_rows(ids, dates, data.y, eligible=everyone(data), share=0.2, seed=0)
    assert np.array_equal(c, a)


def test_holdout_on_generated_data_is_a_fifth_of_the_newest(data: Data, holdout) -> None:
    assert 0.2 <= holdout.size / data.y.size < 0.21  # one customer has at most 8 rows
    assert data.dates[holdout].max() == data.dates.max()
    rest = np.setdiff1d(np.arange(data.y.size), holdout)
    assert_whole_customers_apart(data.customers, holdout, rest)
    # only a few customers seen in every month and a few more share the latest month
    newest = customer_keys(data.customers[holdout], data.dates[holdout])
    older = customer_keys(data.customers[rest], data.dates[rest])
    assert min(newest.values()) >= max(older.values())


# ---- folds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("folds", "seed"), [(5, 0), (3, 1), (7, 2)])
def test_time_blocked_folds(data: Data, folds: int, seed: int) -> None:
    codes = customer_codes(data.customers)
    fold = time_blocked_folds(codes, data.dates, data.y, folds, seed)
    assert fold.shape == data.y.shape and set(fold) == set(range(folds))
    customers = np.unique(data.customers)
    fold_of = {}
    for customer in customers:
        mine = np.unique(fold[data.customers == customer])
        assert mine.size == 1, f"customer {customer} in folds {mine}"
        fold_of[customer] = int(mine[0])
    for k in range(folds):
        assert set(data.y[fold == k]) == {0, 1}, f"fold {k} lacks a class"
    keys = customer_keys(data.customers, data.dates)
    for value in (0, 1):
        members = [c for c in customers if data.y[data.customers == c].max() == value]
        sizes = np.bincount([fold_of[c] for c in members], minlength=folds)
        assert sizes.max() - sizes.min() <= 1
        for k in range(folds - 1):  # contiguous in time: no later fold holds an older customer
            this = [keys[c] for c in members if fold_of[c] == k]
            after = [keys[c] for c in members if fold_of[c] > k]
            assert max(this) <= min(after), f"class {value}: fold {k} overlaps a later fold"


# ---- cross-validation ----------------------------------------------------------------------


def test_cross_validation_holds_out_whole_customers(
    data: Data, holdout: np.ndarray, challenger: Challenger
) -> None:
    c = challenger
    assert (c.method, c.metrics_source) == ("cross_validation", "cross_validation")
    assert np.array_equal(c.holdout, holdout) and c.validation.size == 0
    assert_whole_customers_apart(data.customers, c.fit, c.holdout)
    assert np.array_equal(np.sort(np.r_[c.fit, c.holdout]), np.arange(data.y.size))
    # the decision model's out-of-sample rows are the holdout (the folds' models score the rest)
    assert np.array_equal(c.out_of_sample, holdout)
    assert np.array_equal(c.out_of_sample_scores, c.holdout_scores)
    assert c.holdout_scores.shape == holdout.shape
    assert np.all((c.holdout_scores > 0) & (c.holdout_scores < 1))


def test_cross_validation_metrics_are_the_fold_mean_and_spread(challenger: Challenger) -> None:
    c = challenger
    assert set(c.metrics) == set(c.metrics_std) == METRIC_KEYS
    assert len(c.fold_metrics) == FAST.folds
    for key in METRIC_KEYS:
        values = [m[key] for m in c.fold_metrics]
        assert c.metrics[key] == pytest.approx(np.mean(values))
        assert c.metrics_std[key] == pytest.approx(np.std(values))
    assert sum(m["rows"] for m in c.fold_metrics) == c.fit.size
    assert c.metrics_std["auc"] > 0  # the folds differ


def test_cross_validation_learns_the_signal(data: Data, challenger: Challenger) -> None:
    c = challenger
    assert c.metrics["auc"] > 0.75 and c.metrics["f1"] > 0.3
    assert roc_auc_score(data.y[c.holdout], c.holdout_scores) > 0.75
    assert 1 <= c.rounds < FAST.num_boost_round  # early stopping chose the rounds
    assert c.booster.num_boosted_rounds() == c.rounds
    assert c.booster.feature_names == NAMES
    assert np.array_equal(c.holdout_scores, predict(c.booster, data.X[c.holdout], threads=1))
    assert 0 < c.threshold < 1


def test_out_of_fold_scores_come_from_models_without_the_fold(data: Data, holdout) -> None:
    """Without sampling, each fold's model can be trained again on the other folds. A fold is
    scored at the round count where the mean AUC of the *other* folds peaks; ``rounds`` is
    where the mean AUC of all folds peaks; the threshold and the fold metrics come from those
    out-of-fold scores, never from the holdout."""
    c = fit(data, holdout, EXACT)
    codes = customer_codes(data.customers)
    fold = time_blocked_folds(codes[c.fit], data.dates[c.fit], data.y[c.fit], 5, EXACT.seed)
    grown = c.rounds + EXACT.early_stopping_rounds  # xgboost.cv stopped there
    params = {**fit_params(EXACT, "cross_validation"), "nthread": 1}
    curves = np.zeros((EXACT.folds, grown, fold.size))  # fold x rounds x fit rows
    auc = np.zeros((EXACT.folds, grown))
    for k in range(EXACT.folds):
        train, test = c.fit[fold != k], c.fit[fold == k]
        matrix = xgb.DMatrix(data.X[train], label=data.y[train], missing=np.nan, nthread=1)
        booster = xgb.train(params, matrix, grown)
        X = data.X[test].astype(np.float32)
        for r in range(grown):
            s = booster.inplace_predict(X, iteration_range=(0, r + 1), missing=np.nan)
            curves[k, r, fold == k] = s
            auc[k, r] = roc_auc_score(data.y[test], s)
    assert int(np.argmax(auc.mean(axis=0))) + 1 == c.rounds
    others = (auc.sum(axis=0) - auc) / (EXACT.folds - 1)
    own = np.argmax(others, axis=1)  # each fold's round count - 1
    assert set(own + 1) != {c.rounds}  # here some fold's own noise would have moved the choice
    scores = np.zeros(fold.size)
    for k in range(EXACT.folds):
        scores[fold == k] = curves[k, own[k], fold == k]
    assert c.threshold == choose_threshold(data.y[c.fit], scores)
    for k, metrics in enumerate(c.fold_metrics):
        expected = evaluate(data.y[c.fit][fold == k], scores[fold == k], c.threshold)
        assert metrics == expected, f"fold {k}"


def test_shuffled_labels_learn_nothing_out_of_sample(data: Data, holdout) -> None:
    y = np.random.default_rng(5).permutation(data.y)
    c = fit(data, holdout, y=y)
    assert abs(c.metrics["auc"] - 0.5) < 0.1
    assert abs(roc_auc_score(y[c.holdout], c.holdout_scores) - 0.5) < 0.1
    # the out-of-fold scores give the gate no reason to think it beats chance
    pooled = Scored(y[c.fit], c.out_of_fold_scores, data.customers[c.fit])
    assert cross_validated_auc(pooled, EXACT.folds).low <= 0.5
    # while the model has memorised its own rows: the out-of-fold scores are not in-sample
    assert roc_auc_score(y[c.fit], predict(c.booster, data.X[c.fit], threads=1)) > 0.65


@pytest.mark.parametrize("cv_max_rows", [5_000, 1_000])
def test_holdout_labels_never_reach_the_fit(data: Data, holdout, cv_max_rows: int) -> None:
    """Leakage: the holdout's labels may change the metrics measured on it, nothing else."""
    config = replace(FAST, cv_max_rows=cv_max_rows)
    flipped = data.y.copy()
    flipped[holdout] = 1 - flipped[holdout]
    a, b = fit(data, holdout, config), fit(data, holdout, config, y=flipped)
    assert a.method == b.method == ("cross_validation" if cv_max_rows > 2_000 else "validation")
    assert (a.rounds, a.threshold) == (b.rounds, b.threshold)
    assert a.fold_metrics == b.fold_metrics and np.array_equal(a.validation, b.validation)
    assert np.array_equal(a.out_of_sample_scores, b.out_of_sample_scores)
    assert np.array_equal(
        predict(a.booster, data.X, threads=1), predict(b.booster, data.X, threads=1)
    )


def test_a_fold_without_positive_customers_raises(data: Data) -> None:
    y = np.zeros_like(data.y)
    counts = np.bincount(data.customers - 1000)
    positive = np.flatnonzero(counts >= 5)[:3] + 1000  # 3 customers, 15+ positive rows
    y[np.isin(data.customers, positive)] = 1
    with pytest.raises(
        TrainingError,
        match=r"cannot cross-validate: 3 customers with a positive label for 5 folds",
    ):
        fit(data, np.empty(0, dtype=np.int64), y=y)


def test_too_few_positives_raise(data: Data) -> None:
    y = np.zeros_like(data.y)
    y[:3] = 1
    with pytest.raises(TrainingError, match="3 positives"):
        fit(data, np.empty(0, dtype=np.int64), y=y)


def test_too_few_positives_outside_the_holdout_raise(data: Data, holdout) -> None:
    y = np.zeros_like(data.y)
    y[holdout] = data.y[holdout]
    y[np.setdiff1d(np.arange(y.size), holdout)[:4]] = 1
    with pytest.raises(TrainingError, match=r"4 positives and \d+ negatives"):
        fit(data, holdout, y=y)


def test_without_a_holdout_every_row_is_fitted(data: Data) -> None:
    c = fit(data, np.empty(0, dtype=np.int64))
    assert np.array_equal(c.fit, np.arange(data.y.size))
    assert c.holdout.size == c.holdout_scores.size == c.out_of_sample.size == 0
    assert sum(m["rows"] for m in c.fold_metrics) == data.y.size
    assert c.metrics["auc"] > 0.75


# ---- validation ----------------------------------------------------------------------------


def test_validation_part_is_grouped_and_inside_the_fit_rows(
    data: Data, holdout: np.ndarray, validated: Challenger
) -> None:
    v = validated
    assert v.method == "validation" and v.fold_metrics == [] and v.metrics_std == {}
    assert np.array_equal(v.holdout, holdout)
    assert_whole_customers_apart(data.customers, v.fit, v.holdout)
    assert np.array_equal(np.sort(np.r_[v.fit, v.holdout]), np.arange(data.y.size))
    assert set(v.validation) <= set(v.fit)
    assert_whole_customers_apart(data.customers, v.validation, np.setdiff1d(v.fit, v.validation))
    # about a fifth of the fit customers, drawn within each class of their highest label
    worst = {c: data.y[v.fit][data.customers[v.fit] == c].max() for c in set(data.customers[v.fit])}
    chosen = set(data.customers[v.validation])
    for value in (0, 1):
        members = [c for c, w in worst.items() if w == value]
        share = sum(c in chosen for c in members) / len(members)
        assert abs(share - FAST.validation_share) <= 1 / len(members)
    # out of sample: the validation part and the holdout, each row once
    assert np.array_equal(v.out_of_sample, np.r_[v.validation, v.holdout])
    # drawn at random: another seed, other customers
    other = fit(data, holdout, replace(FAST, cv_max_rows=1_000, seed=1))
    assert set(data.customers[other.validation]) != chosen


def test_validation_metrics_are_measured_on_the_holdout(data: Data, validated) -> None:
    v = validated
    assert v.metrics_source == "holdout"
    assert v.metrics["rows"] == v.holdout.size
    assert v.metrics == evaluate(data.y[v.holdout], v.holdout_scores, v.threshold)
    assert v.metrics["auc"] > 0.75
    scores = v.out_of_sample_scores[: v.validation.size]
    assert v.threshold == choose_threshold(data.y[v.validation], scores)
    assert np.array_equal(v.holdout_scores, v.out_of_sample_scores[v.validation.size :])
    assert v.booster.num_boosted_rounds() == v.rounds < FAST.num_boost_round
    assert v.booster.attr("best_iteration") is None  # every tree of the decision model is used
    assert np.array_equal(v.holdout_scores, predict(v.booster, data.X[v.holdout], threads=1))


def test_validation_without_a_holdout_measures_on_the_validation_part(data: Data) -> None:
    v = fit(data, np.empty(0, dtype=np.int64), replace(FAST, cv_max_rows=1_000))
    assert (v.method, v.metrics_source) == ("validation", "validation")
    assert v.holdout.size == 0 and v.holdout_scores.size == 0
    assert v.metrics["rows"] == v.validation.size > 0
    assert v.metrics == evaluate(data.y[v.validation], v.out_of_sample_scores, v.threshold)
    assert np.array_equal(v.out_of_sample, v.validation)


def test_cv_max_rows_counts_the_fit_rows(data: Data, holdout: np.ndarray) -> None:
    fit_rows = data.y.size - holdout.size
    at = fit(data, holdout, replace(FAST, cv_max_rows=fit_rows))
    below = fit(data, holdout, replace(FAST, cv_max_rows=fit_rows - 1))
    assert (at.method, below.method) == ("cross_validation", "validation")


# ---- the artifact and prediction -----------------------------------------------------------


@pytest.mark.parametrize("rounds", [1, 7])
def test_train_rounds_grows_exactly_the_rounds_asked(data: Data, rounds: int) -> None:
    booster = train_rounds(data.X, data.y, rounds, NAMES, FAST)
    assert booster.num_boosted_rounds() == rounds
    assert booster.attr("best_iteration") is None and not hasattr(booster, "best_iteration")
    assert booster.feature_names == NAMES
    # a plain xgboost user gets exactly the scores we serve
    plain = booster.predict(xgb.DMatrix(data.X, feature_names=NAMES, missing=np.nan))
    assert np.array_equal(plain, predict(booster, data.X, threads=1))


def test_contributions_add_up_to_the_served_score(data: Data, artifact: xgb.Booster) -> None:
    values = contributions(artifact, data.X, NAMES, threads=1)
    assert values.shape == (data.y.size, len(NAMES) + 1)
    served = predict(artifact, data.X, threads=1)
    assert np.abs(values.sum(axis=1) - np.log(served / (1 - served))).max() < 1e-4


def test_predict_uses_the_best_iteration_of_an_early_stopped_booster(data: Data) -> None:
    """Boosters saved before the refit kept every tree and a ``best_iteration``."""
    early = data.customers < 1300
    params = {**FAST.params, "nthread": 1}
    train = xgb.DMatrix(data.X[early], label=data.y[early], missing=np.nan, feature_names=NAMES)
    valid = xgb.DMatrix(data.X[~early], label=data.y[~early], missing=np.nan, feature_names=NAMES)
    booster = xgb.train(
        params, train, 300, evals=[(valid, "v")], early_stopping_rounds=10, verbose_eval=False
    )
    best = booster.best_iteration
    assert best + 1 < booster.num_boosted_rounds()  # it grew trees it does not use
    matrix = xgb.DMatrix(data.X, missing=np.nan, feature_names=NAMES)
    scores = predict(booster, data.X, threads=1)
    assert np.array_equal(scores, booster.predict(matrix, iteration_range=(0, best + 1)))
    assert np.abs(scores - booster.predict(matrix, iteration_range=(0, 0))).max() > 1e-4
    values = contributions(booster, data.X, NAMES, threads=1)
    assert np.abs(values.sum(axis=1) - np.log(scores / (1 - scores))).max() < 1e-4


def test_same_score_share() -> None:
    assert same_score_share(np.full(40, 0.3)) == 1.0
    assert same_score_share(np.r_[np.full(30, 0.2), np.full(10, 0.7)]) == 0.75
    assert same_score_share(np.r_[np.full(10, 0.2), np.full(30, 0.7)]) == 0.75
    assert same_score_share(np.linspace(0, 1, 50)) == 1 / 50
    assert same_score_share(np.array([0.5, 0.5 + 1e-9, 0.1, 0.9])) == 0.5  # equal to 6 places
    assert math.isnan(same_score_share(np.empty(0)))


# ---- model tests ---------------------------------------------------------------------------


def test_renamed_customers_give_the_same_model(data: Data, holdout, challenger) -> None:
    """Invariance: customer ids are opaque keys (renamed in the same order: same split)."""
    ids = np.array([f"C{c:06d}" for c in data.customers], dtype=object)
    renamed_holdout = holdout_rows(
        ids, data.dates, data.y, eligible=everyone(data), share=0.2, seed=0
    )
    assert np.array_equal(renamed_holdout, holdout)
    result = fit(data, renamed_holdout, customer_ids=ids)
    assert result.rounds == challenger.rounds and result.threshold == challenger.threshold
    assert np.array_equal(result.holdout_scores, challenger.holdout_scores)
    assert result.fold_metrics == challenger.fold_metrics
    assert np.array_equal(
        predict(result.booster, data.X, threads=1), predict(challenger.booster, data.X, threads=1)
    )


def test_higher_feature_0_means_higher_risk(data: Data, artifact: xgb.Booster) -> None:
    """Direction: the top decile of feature 0 scores riskier than the bottom decile."""
    scores, f0 = predict(artifact, data.X, threads=1), data.X[:, 0]
    low, high = np.nanquantile(f0, [0.1, 0.9])
    assert scores[f0 >= high].mean() > 2 * scores[f0 <= low].mean()


def test_monotone_constraint_is_honoured(data: Data, holdout: np.ndarray) -> None:
    params = {**FAST.params, "monotone_constraints": "(1,0,0,0,0,0,0,0)"}
    config = replace(FAST, params=params)
    result = fit(data, holdout, config)
    booster = train_rounds(data.X, data.y, result.rounds, NAMES, config)
    raised = data.X.copy()
    raised[:, 0] = np.nan_to_num(raised[:, 0]) + 0.5
    lowered = raised.copy()
    lowered[:, 0] -= 1.0
    for model in (result.booster, booster):
        up, down = predict(model, raised, threads=1), predict(model, lowered, threads=1)
        assert np.all(up >= down) and np.any(up > down)


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
    assert set(m) == METRIC_KEYS


def test_evaluate_with_one_class_gives_nan_rankings() -> None:
    m = evaluate(np.zeros(4), np.array([0.1, 0.2, 0.6, 0.3]), 0.5)
    assert all(math.isnan(m[key]) for key in ("auc", "pr_auc", "ks"))
    assert (m["precision"], m["recall"], m["f1"], m["positives"]) == (0, 0, 0, 0)
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.09) / 4)


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


# ---- trainability --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.r_[np.ones(20), np.zeros(30)], r"too few labelled rows: 50 \(need at least 100\)"),
        (np.zeros(200), r"only one class \(0 positives in 200 rows\)"),
        (np.r_[np.ones(5), np.zeros(195)], r"5 positives and 195 negatives in 200 rows"),
        (np.r_[np.ones(195), np.zeros(5)], r"195 positives and 5 negatives in 200 rows"),
        (np.r_[np.ones(50), np.zeros(149), np.nan], r"1 of 200 rows are not"),
        (np.r_[np.ones(50), np.zeros(148), 2, 0.5], r"2 of 200 rows are not"),
    ],
)
def test_check_trainable_names_the_counts(labels: np.ndarray, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        check_trainable(labels, TrainingConfig())


def test_check_trainable_accepts_the_minimum() -> None:
    check_trainable(np.r_[np.ones(10), np.zeros(90)], TrainingConfig())


@pytest.mark.parametrize(
    "changes",
    [{"holdout_share": 1.0}, {"holdout_share": -0.1}, {"validation_share": 0.0}, {"folds": 1}],
)
def test_config_refuses_impossible_shares_and_folds(changes: dict) -> None:
    with pytest.raises(ValueError):
        TrainingConfig(**changes)
