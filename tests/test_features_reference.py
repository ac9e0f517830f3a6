"""The fast feature path agrees with the slow reference (tests/reference_features.py).

Synthetic data for breadth, hand-made customers for the edges of docs/features.md. Every
disagreement is reported with the feature, the observation and both values.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings

from predelinq.features import FEATURES
from reference_features import (
    FAST_PATHS,
    FEATURE_NAMES,
    OUTPUT_SCHEMA,
    assert_features_equal,
    customer,
    fast_frame,
    frames,
    reference_from,
    salary,
    statement,
    synthetic_frames,
    txn,
)
from test_features_point_in_time import OBSERVATIONS as PIT_OBS
from test_features_point_in_time import histories

DOC = (Path(__file__).parents[1] / "docs" / "features.md").read_text(encoding="utf-8")
OBS = date(2024, 7, 1)  # a Monday
T = datetime(2024, 7, 1)  # midnight UTC starting the observation date
US = timedelta(microseconds=1)


def days(n: float) -> timedelta:
    return timedelta(days=n)


# ---------------------------------------------------------------------------------------------
# the feature list itself


def test_feature_list_is_the_documented_table_in_order():
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]+) \|", DOC, flags=re.MULTILINE)
    assert [(f.name, f.family, f.window) for f in FEATURES] == [
        (name, family, window.strip()) for name, family, window in rows
    ]
    assert tuple(f.name for f in FEATURES) == FEATURE_NAMES


def test_output_layout_order_and_dtypes():
    # observations deliberately not sorted, a customer twice: rows come back in input order
    inputs = frames(
        [customer("B"), customer("A")],
        [txn("A", T - days(3)), txn("B", T - days(40))],
        [statement("B", OBS - days(10))],
        [("B", date(2024, 7, 1)), ("A", date(2024, 6, 1)), ("B", date(2024, 3, 1))],
    )
    got = fast_frame(inputs)
    assert got.schema == pl.Schema(OUTPUT_SCHEMA)
    assert got.select("customer_id", "observation_date").rows() == [
        ("B", date(2024, 7, 1)),
        ("A", date(2024, 6, 1)),
        ("B", date(2024, 3, 1)),
    ]
    for name in FEATURE_NAMES:
        assert got[name].null_count() == 0, f"{name}: missing must be NaN, not null"


# ---------------------------------------------------------------------------------------------
# synthetic data: a few hundred observations, one comparison per feature


@pytest.fixture(scope="module")
def synthetic_reference():
    """The inputs and the (slow) reference's features, computed once for both fast paths."""
    inputs = synthetic_frames(n_customers=150, seed=7)
    # besides the labelled observations (1st of the month, >= 90 days of history, never 30+
    # days past due) a few mid-month dates per customer, some of them early or late in life
    ids = inputs["customers"]["customer_id"].to_list()
    extra = [
        (cid, d)
        for i, cid in enumerate(ids)
        for d in (date(2024, 1, 20), date(2024, 3, 1) + days(i % 97), date(2025, 2, 14))
    ]
    inputs["observations"] = pl.concat(
        [inputs["observations"], frames([], [], [], extra)["observations"]]
    )
    return inputs, reference_from(inputs)


@pytest.fixture(scope="module", params=list(FAST_PATHS))
def synthetic(request, synthetic_reference):
    inputs, expected = synthetic_reference
    return expected, FAST_PATHS[request.param](inputs)


def test_synthetic_rows_line_up(synthetic):
    expected, got = synthetic
    assert got.height == expected.height > 1000
    assert got.select("customer_id", "observation_date").equals(
        expected.select("customer_id", "observation_date")
    )


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_synthetic_feature_agrees_with_reference(synthetic, name):
    expected, got = synthetic
    assert_features_equal(expected, got, [name])


# ---------------------------------------------------------------------------------------------
# hand-made edge cases: (customer, transactions, statements, observation date)

EDGE_CASES = {
    # nothing at all: every payment and transaction feature NaN, the profile is there
    "no_events": (customer("no_events"), [], [], OBS),
    # everything exactly at t is invisible: a debit at t, a statement due on t, a payment on t
    "events_at_t": (
        customer("events_at_t"),
        [
            txn("events_at_t", T, 500.0, category="dining"),
            txn("events_at_t", T, 999.0, "credit", "salary", None, "transfer"),
            txn("events_at_t", T - days(10), 20.0),
        ],
        [
            statement("events_at_t", OBS, 100.0),
            statement("events_at_t", OBS - days(10), 100.0, paid_date=OBS),
        ],
        OBS,
    ),
    # the only transaction is at t: the customer has no transaction before t
    "only_txn_at_t": (customer("only_txn_at_t"), [txn("only_txn_at_t", T, 50.0)], [], OBS),
    # one microsecond before t counts
    "one_us_before_t": (
        customer("one_us_before_t"),
        [txn("one_us_before_t", T - US, 50.0, category="dining", channel="atm")],
        [],
        OBS,
    ),
    # paid after t: unpaid at t, lateness runs to t; paid before due: 0 days late
    "paid_after_t": (
        customer("paid_after_t"),
        [],
        [
            statement("paid_after_t", OBS - days(20), 200.0, paid_date=OBS + days(5)),
            statement("paid_after_t", OBS - days(50), 200.0, paid_date=OBS - days(55)),
            statement("paid_after_t", OBS - days(80), 200.0, OBS - days(70), amount_paid=50.0),
            statement("paid_after_t", OBS - days(110), 0.0, paid_date=OBS - days(110)),
        ],
        OBS,
    ),
    "thin_history": (
        customer("thin_history"),
        [txn("thin_history", T - days(45), 80.0, category="shopping", merchant_id="M9")],
        [],
        OBS,
    ),
    # statements, no transactions: payment features, transaction families NaN
    "payments_only": (
        customer("payments_only"),
        [],
        [
            statement("payments_only", OBS - days(15), 300.0),
            statement("payments_only", OBS - days(45), 250.0, OBS - days(40), 100.0),
            statement("payments_only", OBS - days(75), 400.0, OBS - days(75)),
            statement("payments_only", OBS - days(105), 500.0, OBS - days(98)),
            statement("payments_only", OBS - days(200), 500.0, OBS - days(150)),
        ],
        OBS,
    ),
    # transactions, but none in the last 120 days: true zeros, ratios NaN
    "dormant": (
        customer("dormant"),
        [
            txn("dormant", T - days(130), 70.0),
            salary("dormant", T - days(200), 2500.0),
            txn("dormant", T - days(121), 15.0, category="cash", channel="atm"),
        ],
        [],
        OBS,
    ),
    # no credit limit / zero credit limit: utilisation NaN
    "no_credit_limit": (
        customer("no_credit_limit", credit_limit=None),
        [txn("no_credit_limit", T - days(2))],
        [
            statement("no_credit_limit", OBS - days(5), 100.0),
            statement("no_credit_limit", OBS - days(100), 100.0, OBS - days(99)),
        ],
        OBS,
    ),
    "zero_credit_limit": (
        customer("zero_credit_limit", credit_limit=0.0),
        [],
        [
            statement("zero_credit_limit", OBS - days(5), 100.0),
            statement("zero_credit_limit", OBS - days(100), 100.0, OBS - days(99)),
        ],
        OBS,
    ),
    # salary credits without a salary day
    "salary_day_null": (
        customer("salary_day_null", salary_day=None),
        [
            salary("salary_day_null", datetime(2024, 6, 25, 9), 3000.0),
            salary("salary_day_null", datetime(2024, 5, 25, 9), 3000.0),
        ],
        [],
        OBS,
    ),
    # no monthly income: the deviation falls back to the customer's own earlier salaries
    "income_null": (
        customer("income_null", monthly_income=None, salary_day=28),
        [
            salary("income_null", datetime(2024, 3, 28, 9), 2000.0),
            salary("income_null", datetime(2024, 4, 29, 9), 2200.0),
            salary("income_null", datetime(2024, 6, 2, 9), 2520.0),
            salary("income_null", datetime(2023, 12, 28, 9), 9999.0),  # > 180 days: ignored
        ],
        [],
        OBS,
    ),
    # only one salary and no income: no reference
    "income_null_one_salary": (
        customer("income_null_one_salary", monthly_income=None),
        [salary("income_null_one_salary", datetime(2024, 6, 25, 9), 2520.0)],
        [],
        OBS,
    ),
    # an observation before the account exists (events only after it)
    "before_created": (
        customer("before_created", created_at=datetime(2024, 8, 15, 10, 30)),
        [txn("before_created", datetime(2024, 8, 20))],
        [statement("before_created", date(2024, 9, 20))],
        OBS,
    ),
    # created 10 days before t: inactive days counted from the first day of created_at
    "new_customer": (
        customer("new_customer", created_at=datetime(2024, 6, 21, 18)),
        [txn("new_customer", datetime(2024, 6, 21, 19)), txn("new_customer", T - days(1))],
        [],
        OBS,
    ),
    # exact window edges: t-7d, t-14d, t-30d, t-60d, t-90d, t-120d; statements due on t-60,
    # t-90, t-180 (inside) and t-181 (outside)
    "window_edges": (
        customer("window_edges"),
        [
            txn("window_edges", T - days(7), 7.0, category="dining", merchant_id="A"),
            txn("window_edges", T - days(14), 14.0, "credit", "transfer", None, "transfer"),
            txn("window_edges", T - days(30), 30.0, category="rent", merchant_id="B"),
            txn("window_edges", T - days(60), 60.0, category="shopping", merchant_id="C"),
            txn("window_edges", T - days(90), 90.0, category="cash", merchant_id="D"),
            txn("window_edges", T - days(120), 120.0, category="utilities", merchant_id="E"),
            txn("window_edges", T - days(120) - US, 999.0, merchant_id="F"),
        ],
        [
            statement("window_edges", OBS - days(60), 100.0, OBS - days(57)),
            statement("window_edges", OBS - days(90), 100.0, OBS - days(80)),
            statement("window_edges", OBS - days(180), 100.0, OBS - days(150)),
            statement("window_edges", OBS - days(181), 100.0),
        ],
        OBS,
    ),
    # ATM: channel atm or category cash, debits only; a null channel
    "atm_rules": (
        customer("atm_rules"),
        [
            txn("atm_rules", T - days(1), 40.0, category="transfer", channel="atm"),
            txn("atm_rules", T - days(2), 60.0, category="cash", channel="branch"),
            txn("atm_rules", T - days(3), 80.0, category="cash", channel=None),
            txn("atm_rules", T - days(4), 500.0, "credit", "cash", None, "atm"),  # a credit
            txn("atm_rules", T - days(5), 20.0, channel=None),
            txn("atm_rules", T - days(50), 30.0, category="cash", channel="atm"),
        ],
        [],
        OBS,
    ),
    # salary day wrap-around (floored modulo): paid on the 1st for salary day 28 -> +3
    "salary_wraps_late": (
        customer("salary_wraps_late", salary_day=28),
        [salary("salary_wraps_late", datetime(2024, 6, 1, 8))],
        [],
        OBS,
    ),
    # paid on the 30th for salary day 2 -> -2 (early)
    "salary_wraps_early": (
        customer("salary_wraps_early", salary_day=2),
        [salary("salary_wraps_early", datetime(2024, 5, 30, 8))],
        [],
        OBS,
    ),
    # weekend share and merchants without id
    "weekend": (
        customer("weekend"),
        [
            txn("weekend", datetime(2024, 6, 29, 23, 59), 30.0, merchant_id=None),  # Saturday
            txn("weekend", datetime(2024, 6, 30, 0, 0), 10.0, merchant_id="X"),  # Sunday
            txn("weekend", datetime(2024, 6, 28, 12), 60.0, merchant_id="X"),  # Friday
            txn("weekend", datetime(2024, 5, 4, 12), 50.0, merchant_id="Y"),  # Sat, baseline
            txn("weekend", datetime(2024, 5, 6, 12), 50.0, merchant_id="Y"),  # Mon, baseline
        ],
        [],
        OBS,
    ),
}


@pytest.fixture(scope="module", params=list(FAST_PATHS))
def edges(request):
    cases = list(EDGE_CASES.values())
    inputs = frames(
        [c for c, _, _, _ in cases],
        [x for _, txns, _, _ in cases for x in txns],
        [p for _, _, pays, _ in cases for p in pays],
        [(c["customer_id"], obs) for c, _, _, obs in cases],
    )
    expected, got = reference_from(inputs), FAST_PATHS[request.param](inputs)
    return {
        case: (
            expected.filter(pl.col("customer_id") == case),
            got.filter(pl.col("customer_id") == case),
        )
        for case in EDGE_CASES
    }


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_case_agrees_with_reference(edges, case):
    expected, got = edges[case]
    assert_features_equal(expected, got)


# The reference must itself get the edges right: a few literal expectations per case, checked
# on the reference and on the fast path.

PAYMENT = [n for n in FEATURE_NAMES if n.startswith("pay_")]
TRANSACTION = [
    n for n in FEATURE_NAMES if n.startswith(("sal_", "bal_", "spend_", "cash_", "act_"))
]
NAN = math.nan

LITERAL = {
    "no_events": {
        **{n: NAN for n in PAYMENT + TRANSACTION},
        "prof_account_age_days": (T - datetime(2023, 1, 1)).days,
        "prof_monthly_income": 3000.0,
        "prof_credit_limit": 5000.0,
    },
    "events_at_t": {
        "spend_total_7": 0.0,
        "spend_discretionary_30": 0.0,
        "spend_total_30": 20.0,
        "act_txn_count_30": 1.0,
        "act_days_since_last_txn": 10.0,
        "sal_days_since_last": NAN,  # the salary at t is invisible
        "pay_unpaid_past_due_count": 1.0,  # paid on t: still unpaid at t; due on t: not due
        "pay_days_late_max_90": 10.0,
        "pay_late_count_180": 1.0,
    },
    "only_txn_at_t": {n: NAN for n in TRANSACTION},
    "one_us_before_t": {
        "spend_total_7": 50.0,
        "spend_discretionary_7": 50.0,
        "cash_atm_count_30": 1.0,
        "cash_reliance_30": 1.0,
        "act_txn_count_30": 1.0,
        "act_days_since_last_txn": 1e-6 / 86400,
        "act_inactive_days_30": 29.0,
    },
    "paid_after_t": {
        # due t-20 unpaid at t: 20 days late, shortfall 1; t-50 paid early: 0 days;
        # t-80 paid 10 days late, 50 of 200: partial, shortfall 0.75; t-110 (amount 0) 0 days
        "pay_unpaid_past_due_count": 1.0,
        "pay_days_late_mean_90": (20 + 0 + 10) / 3,
        "pay_days_late_max_90": 20.0,
        "pay_days_late_mean_180": (20 + 0 + 10 + 0) / 4,
        "pay_late_count_180": 2.0,
        "pay_partial_share_180": 1 / 4,
        "pay_shortfall_mean_180": (1.0 + 0.0 + 0.75) / 3,
        "pay_lateness_shift": (20 + 0) / 2 - (10 + 0) / 2,
        "pay_utilisation_latest": 200.0 / 5000.0,
        "pay_utilisation_change": 200.0 / 5000 - (200.0 / 5000 + 0.0) / 2,
    },
    "thin_history": {
        "spend_total_7": 0.0,
        "spend_total_30": 0.0,
        "spend_total_30_vs_baseline": 0.0,  # 0 / (80 / 3)
        "spend_avg_ticket_change": NAN,  # no debit in the last 30 days
        "spend_merchant_diversity_change": 0.0,  # 0 / (1 / 3)
        "bal_drawdown_90": NAN,  # no credit
        "sal_missing_months_180": NAN,  # R5: transactions but no salary credit
        "act_txn_count_30": 0.0,
        "act_inactive_days_30": 30.0,
        "act_days_since_last_txn": 45.0,
    },
    "payments_only": {
        **{n: NAN for n in TRANSACTION},
        "pay_unpaid_past_due_count": 1.0,
        "pay_days_late_mean_90": (15 + 5 + 0) / 3,
        "pay_days_late_max_180": 15.0,
    },
    "dormant": {
        "bal_net_flow_7": 0.0,
        "bal_net_flow_30": 0.0,
        "bal_net_flow_30_vs_baseline": 0.0,
        "spend_total_30": 0.0,
        "spend_essential_30": 0.0,
        "spend_total_30_vs_baseline": NAN,
        "cash_atm_count_30": 0.0,
        "cash_atm_count_change": 0.0,
        "cash_reliance_30": NAN,
        "act_txn_count_30": 0.0,
        "act_txn_count_change": NAN,
        "act_inactive_days_30": 30.0,
        "act_days_since_last_txn": 121.0,
        "sal_days_since_last": 200.0,
        "sal_amount_deviation": 2500 / 3000 - 1,  # R4: the last salary however old, vs income
    },
    "no_credit_limit": {
        "pay_utilisation_latest": NAN,
        "pay_utilisation_change": NAN,
        "prof_credit_limit": NAN,
    },
    "zero_credit_limit": {"pay_utilisation_latest": NAN, "pay_utilisation_change": NAN},
    "salary_day_null": {
        "sal_last_delay_days": NAN,
        "sal_days_since_last": 6 - 9 / 24,  # 2024-06-25 09:00 -> 2024-07-01
        "sal_amount_deviation": 0.0,  # 3000 / 3000 - 1
    },
    "income_null": {
        # last salary 2520 vs mean(2000, 2200) = 2100 -> 0.2; paid on the 2nd, day 28 -> +4
        "sal_amount_deviation": 2520 / 2100 - 1,
        "sal_last_delay_days": 4.0,
        "prof_monthly_income": NAN,
    },
    "income_null_one_salary": {"sal_amount_deviation": NAN},
    "before_created": {
        **{n: NAN for n in PAYMENT + TRANSACTION},
        "prof_account_age_days": -(45 + 10.5 / 24),
    },
    "new_customer": {
        # days 2024-06-21 .. 2024-06-30 (10 days), active on 06-21 and 06-30
        "act_inactive_days_30": 8.0,
        "prof_account_age_days": 9 + 6 / 24,
    },
    "window_edges": {
        "spend_total_7": 7.0,
        "bal_net_flow_14": 14.0 - 7.0,
        "spend_total_30": 7.0 + 30.0,
        "spend_essential_30": 30.0,
        "spend_total_30_vs_baseline": 37.0 / ((60.0 + 90.0 + 120.0) / 3),
        "spend_total_7_vs_baseline": 7.0 / ((60.0 + 90.0 + 120.0) * 7 / 90),
        "bal_drawdown_90": (7.0 + 30.0 + 60.0 + 90.0 - 14.0) / 14.0,
        # merchants: last 30 {A, B}; [t-60,t-30) {C}; [t-90,t-60) {D}; [t-120,t-90) {E}
        "spend_merchant_diversity_change": 2.0 / 1.0,
        "cash_atm_count_30": 0.0,
        "cash_atm_count_change": -1 / 3,
        "pay_days_late_mean_90": (3 + 10) / 2,
        "pay_days_late_mean_180": (3 + 10 + 30) / 3,
        "pay_unpaid_past_due_count": 1.0,
        "pay_lateness_shift": 3.0 - (10 + 30) / 2,
    },
    "atm_rules": {
        "cash_atm_count_30": 3.0,
        "cash_reliance_30": (40 + 60 + 80) / (40 + 60 + 80 + 20),
        "cash_atm_amount_change": 60.0 / 30.0,
        "cash_atm_count_change": 3 - 1 / 3,
    },
    "salary_wraps_late": {"sal_last_delay_days": 3.0},
    "salary_wraps_early": {"sal_last_delay_days": -2.0},
    "weekend": {
        "spend_weekend_share_change": 40 / 100 - 50 / 100,
        "spend_merchant_diversity_change": 1 / (1 / 3),  # {X} vs {Y}, {}, {}: R6 null skipped
        "spend_avg_ticket_change": (100 / 3) / 50,
    },
}


@pytest.mark.parametrize("case", LITERAL)
@pytest.mark.parametrize("path", ["reference", "fast"])
def test_edge_case_literal_values(edges, case, path):
    expected, got = edges[case]
    frame = expected if path == "reference" else got
    wrong = []
    for name, want in LITERAL[case].items():
        value = frame[name][0]
        same = (math.isnan(want) and value is not None and math.isnan(value)) or (
            value is not None and math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9)
        )
        if not same:
            wrong.append(f"{name} at {case} {OBS}: expected {want!r}, got {value!r}")
    assert not wrong, f"{path} path:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------------
# random small histories (window edges, NaN/zero rules in combination)


@pytest.mark.parametrize("path", FAST_PATHS)
@settings(max_examples=30, deadline=None)
@given(history=histories())
def test_random_histories_agree_with_reference(path, history):
    inputs = frames(history["customers"], history["transactions"], history["payments"], PIT_OBS)
    expected = reference_from(inputs)
    assert_features_equal(expected, FAST_PATHS[path](inputs), list(FEATURE_NAMES))


# ---------------------------------------------------------------------------------------------
# the order of the input rows does not matter


@pytest.mark.parametrize("path", FAST_PATHS)
def test_row_order_of_the_inputs_does_not_matter(path):
    inputs = synthetic_frames(n_customers=40, seed=5)
    shuffled = {
        **inputs,
        "transactions": inputs["transactions"].sample(fraction=1.0, shuffle=True, seed=1),
        "payments": inputs["payments"].sample(fraction=1.0, shuffle=True, seed=1),
        "customers": inputs["customers"].reverse(),
    }
    assert_features_equal(FAST_PATHS[path](inputs), FAST_PATHS[path](shuffled))


def test_statements_sharing_the_latest_due_date_do_not_depend_on_row_order():
    # the spec names "the statement with the latest due_date" without saying what happens on
    # a tie (the reference takes the mean, R3); whatever the rule, it must not be row order
    def latest_utilisation(amounts: list[float]) -> tuple[float, float]:
        pays = [statement("tie", OBS - days(1), a) for a in amounts]
        pays.append(statement("tie", OBS - days(100), 100.0, OBS - days(99)))
        got = fast_frame(frames([customer("tie")], [], pays, [("tie", OBS)]))
        return got["pay_utilisation_latest"][0], got["pay_utilisation_change"][0]

    assert latest_utilisation([0.0, 50.0]) == latest_utilisation([50.0, 0.0])


def test_one_date_path_keeps_the_given_order_and_repeats():
    from predelinq.features.at_date import features_at_date

    inputs = synthetic_frames(n_customers=5, seed=3)
    ids = inputs["customers"]["customer_id"].to_list()
    asked = [ids[3], ids[0], ids[3], "nobody", ids[1]]
    events = {name: inputs[name] for name in ("customers", "transactions", "payments")}
    got = features_at_date(asked, OBS, events)
    assert got["customer_id"].to_list() == asked
    assert all(math.isnan(got[name][3]) for name in FEATURE_NAMES)
    alone = features_at_date([ids[3]], OBS, events)
    assert_features_equal(alone, got.slice(0, 1))
    assert_features_equal(alone, got.slice(2, 1))
