"""Reference profiles and PSI (pure), and the rules that say which features PSI judges."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest

from predelinq.features import feature_set
from predelinq.features.declarations import Source
from predelinq.monitoring.profile import (
    SHARE_FLOOR,
    Bins,
    Profile,
    bins_of,
    build_profile,
    compare,
    psi,
    stability,
)
from predelinq.monitoring.scope import (
    STABLE_PSI,
    Lookback,
    full_windows,
    lookback,
    monitoring_scope,
    reference_profile,
)


def _hand_psi(expected: list[float], actual: list[float]) -> float:
    return sum(
        (max(a, SHARE_FLOOR) - max(e, SHARE_FLOOR))
        * math.log(max(a, SHARE_FLOOR) / max(e, SHARE_FLOOR))
        for e, a in zip(expected, actual, strict=True)
    )


def test_identical_samples_give_zero_and_a_resample_next_to_zero() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=20_000)
    bins = bins_of(values, 10)
    assert len(bins.edges) == 9
    np.testing.assert_allclose(bins.shares, 0.1, atol=1e-3)
    assert psi(bins, values) == 0.0
    assert psi(bins, rng.normal(size=20_000)) < 0.005


def test_a_known_shift_gives_the_hand_computed_psi() -> None:
    reference = bins_of(np.arange(100.0), 4)
    assert reference.edges == (24.0, 49.0, 74.0)  # right-closed: 25 values per bin
    actual = np.concatenate(
        [np.full(10, 3.0), np.full(20, 30.0), np.full(30, 60.0), np.full(40, 99.0)]
    )
    expected = _hand_psi([0.25] * 4 + [0.0], [0.1, 0.2, 0.3, 0.4, 0.0])
    assert psi(reference, actual) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(
        -0.15 * math.log(0.4) - 0.05 * math.log(0.8) + 0.05 * math.log(1.2) + 0.15 * math.log(1.6)
    )


def test_missing_values_are_a_bin_of_their_own() -> None:
    reference = bins_of(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), 2)
    assert reference.edges == (2.0,)
    assert reference.shares == (0.4, 0.4) and reference.missing == pytest.approx(0.2)
    actual = np.array([1.0, np.nan, np.nan, np.nan])
    assert psi(reference, actual) == pytest.approx(_hand_psi([0.4, 0.4, 0.2], [0.25, 0.0, 0.75]))
    everything_missing = bins_of(np.full(5, np.nan), 10)
    assert everything_missing.edges == () and everything_missing.missing == 1.0
    assert psi(everything_missing, np.full(3, np.nan)) == 0.0
    assert psi(everything_missing, np.ones(3)) > 5  # values where there were none


def test_point_masses_collapse_to_unique_edges() -> None:
    flag = np.array([0.0] * 70 + [1.0] * 30)
    bins = bins_of(flag, 10)
    assert bins.edges == (0.0, 1.0)
    assert bins.shares == pytest.approx((0.7, 0.3, 0.0))
    assert psi(bins, flag[::-1]) == 0.0
    counts = np.array([0.0] * 60 + [1.0] * 25 + [2.0] * 10 + [7.0] * 5)
    assert bins_of(counts, 10).edges == (0.0, 1.0, 2.0)  # the 90% quantile is 2
    assert bins_of(counts, 10).shares == pytest.approx((0.6, 0.25, 0.1, 0.05))
    constant = bins_of(np.full(50, 3.0), 10)
    assert constant.edges == (3.0,) and constant.shares == (1.0, 0.0)
    assert psi(constant, np.full(9, 3.0)) == 0.0
    # a constant that moves: every value in the bin that was empty, floored, finite
    moved = psi(constant, np.full(9, 4.0))
    assert moved == pytest.approx(_hand_psi([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]))
    assert math.isfinite(moved) and moved > 10


def test_infinite_values_fall_into_the_end_bins() -> None:
    bins = bins_of(np.array([1.0, 2.0, 3.0, np.inf, -np.inf]), 2)
    assert all(math.isfinite(e) for e in bins.edges)
    assert int(bins.counts(np.array([-np.inf]))[0]) == 1
    assert int(bins.counts(np.array([np.inf]))[len(bins.edges)]) == 1


def test_empty_sides_give_nan() -> None:
    assert math.isnan(psi(bins_of(np.arange(5.0), 2), np.empty(0)))
    assert math.isnan(psi(bins_of(np.empty(0), 2), np.arange(5.0)))


def test_profiles_round_trip_through_json() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=500), rng.integers(0, 3, 500), np.full(500, np.nan)])
    profile = build_profile(X, ["a", "b", "c"], rng.random(500), 10)
    profile = Profile(profile.rows, profile.score, profile.features, {"a": 0.02})
    again = Profile.from_json(json.loads(json.dumps(profile.as_json())))
    assert again == profile
    with pytest.raises(ValueError, match="edges"):
        Bins.from_json({"edges": [2.0, 1.0], "shares": [0.5, 0.2, 0.3], "missing": 0, "rows": 3})


def test_compare_matches_psi_per_feature_and_reports_absent_features() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2_000, 3))
    reference = build_profile(X, ["a", "b", "c"], rng.random(2_000), 10)
    Y = rng.normal(loc=[0.0, 1.0], size=(1_000, 2))
    scores = rng.random(1_000) ** 2
    result = compare(reference, Y, ["b", "a"], scores)
    assert result.features == {
        "a": psi(reference.features["a"], Y[:, 1]),
        "b": psi(reference.features["b"], Y[:, 0]),
    }
    assert result.features["a"] > 0.5 > 0.05 > result.features["b"]
    assert result.absent == ("c",)
    assert result.score == psi(reference.score, scores) and result.score > 0.1
    assert set(compare(reference, Y, ["b", "a"], scores, only=["a"]).features) == {"a"}


def test_build_profile_restricts_a_feature_to_its_rows() -> None:
    X = np.column_stack([np.arange(10.0), np.arange(10.0)])
    profile = build_profile(X, ["a", "b"], np.zeros(10), 2, rows={"b": np.arange(10) >= 5})
    assert profile.features["a"].rows == 10 and profile.features["b"].rows == 5
    assert profile.features["b"].edges == (7.0,)  # the median of 5..9


def test_stability_is_the_largest_adjacent_month_psi() -> None:
    rng = np.random.default_rng(2)
    months = np.repeat(np.array(["2024-01", "2024-02", "2024-03"], dtype="datetime64[M]"), 3_000)
    steady = rng.normal(size=9_000)
    seasonal = np.concatenate(
        [rng.normal(size=3_000), rng.normal(1, 1, 3_000), rng.normal(size=3_000)]
    )
    X = np.column_stack([steady, seasonal])
    found = stability(X, ["steady", "seasonal"], months, 10, min_rows=500)
    assert found["steady"] < 0.02
    first = bins_of(seasonal[:3_000], 10)
    second = bins_of(seasonal[3_000:6_000], 10)
    assert found["seasonal"] == max(
        psi(first, seasonal[3_000:6_000]), psi(second, seasonal[6_000:])
    )
    assert stability(X, ["steady"], months, 10, min_rows=5_000) == {}  # months too small


# --- which features PSI judges (rules A-D, from the declarations) -----------------------


def test_elapsed_time_and_windows_come_from_the_declarations() -> None:
    features = feature_set()
    by_name = features.by_name()

    def look(name: str) -> Lookback:
        return lookback(by_name[name], features)

    for name in ("act_days_since_first_txn", "prof_account_age_days", "pay_statement_count"):
        assert look(name).elapsed, name
    assert look("pay_days_late_max_all").elapsed and look("pay_unpaid_past_due_count").elapsed
    assert not look("pay_days_since_last_late").elapsed  # recency, not history depth
    assert look("pay_days_since_last_late").days == {}
    assert look("prof_monthly_income").days == {} and not look("prof_monthly_income").elapsed
    assert look("act_months_active_360").days == {"transactions": 360}
    assert look("bal_mean_30_vs_180").days == {"transactions": 180}  # minus by name
    assert look("spend_total_30_vs_baseline").days == {"transactions": 120}  # 90 + offset 30
    assert look("pay_lateness_shift").days == {"payments": 180}
    elapsed = [f.name for f in features.features if lookback(f, features).elapsed]
    assert len(elapsed) == 5


def test_windows_are_full_only_after_the_extract_start() -> None:
    features = feature_set()
    look = lookback(features.by_name()["pay_lateness_shift"], features)
    # 180 days before each: 2023-12-30, 2023-12-31, 2024-01-01 (the payments' start)
    dates = np.array(["2024-06-27", "2024-06-28", "2024-06-29"], dtype="datetime64[D]")
    starts: dict[Source, date | None] = {
        "transactions": date(2023, 1, 1),
        "payments": date(2024, 1, 1),
    }
    assert full_windows(look, dates, starts).tolist() == [False, False, True]
    assert full_windows(look, dates, {"transactions": None, "payments": None}).all()


def test_monitoring_scope_says_why_a_feature_is_not_judged() -> None:
    features = feature_set()
    names = list(features.names)
    rng = np.random.default_rng(4)
    n = 6 * 600
    dates = np.repeat(
        np.array([f"2024-{m:02d}-01" for m in range(7, 13)], dtype="datetime64[D]"), 600
    )
    X = rng.normal(size=(n, len(names)))
    seasonal = names.index("spend_essential_30_vs_baseline")
    X[:, seasonal] += np.tile(np.repeat([0.0, 1.0], 600), 3)  # up and down every month
    starts: dict[Source, date | None] = {
        "transactions": date(2024, 1, 1),
        "payments": date(2024, 1, 1),
    }
    profile = reference_profile(X, dates, lambda rows: rows[:, 0], features, starts, 10)
    assert profile.rows == 3 * 600  # the newest 91 days of observation dates
    assert profile.starts == {"transactions": "2024-01-01", "payments": "2024-01-01"}
    assert profile.features["act_months_active_360"].rows == 0  # never a full 360 days
    assert profile.stability["spend_essential_30_vs_baseline"] >= STABLE_PSI
    scope = monitoring_scope(profile, features, date(2025, 1, 15), starts)
    why = scope.not_monitored
    assert why["prof_account_age_days"].startswith("elapsed time")
    assert why["act_months_active_360"].startswith("window never full in the training rows")
    assert why["spend_essential_30_vs_baseline"].startswith("not stable")
    assert "bal_mean_30" in scope.monitored and "pay_days_late_mean_90" in scope.monitored
    assert set(scope.monitored) | set(why) == set(names)
    early = monitoring_scope(profile, features, date(2024, 5, 1), starts)
    assert early.not_monitored["bal_mean_180"].startswith("window not full at 2024-05-01")
