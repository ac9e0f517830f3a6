"""Small fixtures computed by hand, at least one per feature family.

Every observation is at t = 2024-07-01 (a Monday, midnight UTC). Useful dates:
t-7 = 06-24, t-14 = 06-17, t-30 = 06-01, t-60 = 05-02, t-90 = 04-02, t-120 = 03-03,
t-150 = 02-02, t-180 = 01-03. Each fixture runs on the fast path and on the reference.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from reference_features import (
    FAST_PATHS,
    customer,
    frames,
    reference_from,
    salary,
    statement,
    txn,
)

OBS = date(2024, 7, 1)
NAN = math.nan


@pytest.fixture(params=["duckdb", "at_date", "reference"])
def features(request):
    """features(customer, transactions, statements) -> {name: value} for ("C", t)."""
    compute = FAST_PATHS.get(request.param, reference_from)

    def run(cust: dict, transactions: list[dict], statements: list[dict]) -> dict[str, float]:
        inputs = frames([cust], transactions, statements, [(cust["customer_id"], OBS)])
        return compute(inputs).row(0, named=True)

    return run


def check(got: dict[str, float], expected: dict[str, float]) -> None:
    wrong = [
        f"{name}: expected {want!r}, got {got[name]!r}"
        for name, want in expected.items()
        if not (
            (math.isnan(want) and math.isnan(got[name]))
            or math.isclose(got[name], want, rel_tol=1e-9, abs_tol=1e-9)
        )
    ]
    assert not wrong, "\n".join(wrong)


# --- payments ------------------------------------------------------------------------------


def test_payments_lateness_partial_shortfall_utilisation(features):
    # credit limit 1000
    # due 06-10, paid 06-18, 300 in full  -> 8 days late        util 0.3 (latest)
    # due 05-10, paid 05-08, 100 in full  -> 0 (paid early)      util 0.1
    # due 04-10, paid 04-14, 50 of 200    -> 4 days late, partial, shortfall 0.75, util 0.2
    # due 02-10, never paid, 500          -> unpaid at t: 142 days late (02-10 -> 07-01),
    #                                        shortfall 1, util 0.5; outside the 90 days
    c = customer("C", credit_limit=1000.0)
    statements = [
        statement("C", date(2024, 6, 10), 300.0, date(2024, 6, 18)),
        statement("C", date(2024, 5, 10), 100.0, date(2024, 5, 8)),
        statement("C", date(2024, 4, 10), 200.0, date(2024, 4, 14), amount_paid=50.0),
        statement("C", date(2024, 2, 10), 500.0),
    ]
    check(
        features(c, [], statements),
        {
            "pay_days_late_mean_90": 4.0,  # (8 + 0 + 4) / 3
            "pay_days_late_max_90": 8.0,
            "pay_days_late_mean_180": 38.5,  # (8 + 0 + 4 + 142) / 4
            "pay_days_late_max_180": 142.0,
            "pay_late_count_180": 3.0,
            "pay_unpaid_past_due_count": 1.0,
            "pay_partial_share_180": 0.25,  # 1 of 4
            "pay_shortfall_mean_180": 0.4375,  # (0 + 0 + 0.75 + 1) / 4
            "pay_lateness_shift": -69.0,  # [t-60, t): (8 + 0) / 2 = 4; before: (4 + 142) / 2
            "pay_utilisation_latest": 0.3,
            "pay_utilisation_change": -0.05,  # 0.3 - (0.2 + 0.5) / 2
        },
    )


def test_payment_status_is_taken_at_t(features):
    # due 06-20, paid 07-03 (after t): unpaid at t, 11 days late, shortfall 1
    # due 06-25, paid on t (07-01): not yet visible, unpaid, 6 days late
    # due on t: not due before t, left out entirely
    c = customer("C", credit_limit=None)
    statements = [
        statement("C", date(2024, 6, 20), 100.0, date(2024, 7, 3)),
        statement("C", date(2024, 6, 25), 100.0, date(2024, 7, 1)),
        statement("C", date(2024, 7, 1), 100.0),
    ]
    check(
        features(c, [], statements),
        {
            "pay_unpaid_past_due_count": 2.0,
            "pay_days_late_mean_90": 8.5,  # (11 + 6) / 2
            "pay_days_late_max_90": 11.0,
            "pay_late_count_180": 2.0,
            "pay_partial_share_180": 0.0,  # unpaid is not partial
            "pay_shortfall_mean_180": 1.0,
            "pay_lateness_shift": NAN,  # nothing due in [t-180, t-60)
            "pay_utilisation_latest": NAN,  # no credit limit
        },
    )


def test_no_statement_before_t_means_every_payment_feature_is_nan(features):
    c = customer("C")
    got = features(c, [txn("C", datetime(2024, 6, 1))], [statement("C", date(2024, 7, 2))])
    check(got, {name: NAN for name in got if name.startswith("pay_")})


# --- salary --------------------------------------------------------------------------------


SALARIES = [
    salary("C", datetime(2024, 1, 25, 10), 2800.0),
    salary("C", datetime(2024, 4, 25, 10), 3000.0),
    salary("C", datetime(2024, 6, 28, 10), 2400.0),
]


def test_salary_delay_recency_deviation_missing_months(features):
    # salary day 25, last salary on the 28th: ((28 - 25 + 15) mod 30) - 15 = 3
    # last salary 06-28 10:00 -> t: 2 days 14 hours
    # deviation against monthly_income 3000: 2400 / 3000 - 1 = -0.2
    # first salary 01-25 10:00; periods: [06-01,07-01) has one; [05-02,06-01) none -> 1;
    # [04-02,05-02) has one; [03-03,04-02) none -> 2; [02-02,03-03) none -> 3;
    # [01-03,02-02) starts before the first salary -> not counted
    c = customer("C", monthly_income=3000.0, salary_day=25)
    check(
        features(c, SALARIES, []),
        {
            "sal_last_delay_days": 3.0,
            "sal_days_since_last": 2 + 14 / 24,
            "sal_amount_deviation": -0.2,
            "sal_missing_months_180": 3.0,
        },
    )


def test_salary_without_income_or_salary_day(features):
    # no salary day: no delay; no income: reference = mean of the other salaries of the last
    # 180 days (2800, 3000) = 2900 -> 2400 / 2900 - 1 = -0.17241379...
    c = customer("C", monthly_income=None, salary_day=None)
    check(
        features(c, SALARIES, []),
        {
            "sal_last_delay_days": NAN,
            "sal_amount_deviation": -0.1724137931034483,
            "sal_missing_months_180": 3.0,
        },
    )


def test_salary_delay_wraps_with_floored_modulo(features):
    # salary day 28, paid on 06-01: ((1 - 28 + 15) mod 30) - 15 = (-12 mod 30) - 15 = 3
    c = customer("C", salary_day=28)
    check(features(c, [salary("C", datetime(2024, 6, 1, 9))], []), {"sal_last_delay_days": 3.0})


# --- balance -------------------------------------------------------------------------------


def test_balance_net_flows_and_drawdown(features):
    c = customer("C")
    transactions = [
        txn("C", datetime(2024, 6, 28, 12), 1000.0, "credit", "transfer", None, "transfer"),
        txn("C", datetime(2024, 6, 26), 200.0),
        txn("C", datetime(2024, 6, 20), 300.0),
        txn("C", datetime(2024, 6, 10), 500.0, "credit", "transfer", None, "transfer"),
        txn("C", datetime(2024, 6, 5), 400.0),
        # baseline [03-03, 06-01)
        txn("C", datetime(2024, 5, 15), 900.0, "credit", "transfer", None, "transfer"),
        txn("C", datetime(2024, 4, 20), 600.0),
        txn("C", datetime(2024, 3, 10), 900.0),  # before t-90
    ]
    check(
        features(c, transactions, []),
        {
            "bal_net_flow_7": 800.0,  # 1000 - 200
            "bal_net_flow_14": 500.0,  # 800 - 300
            "bal_net_flow_30": 600.0,  # 500 + 500 - 400
            "bal_net_flow_30_vs_baseline": 800.0,  # 600 - (900 - 600 - 900) / 3
            # last 90 days: credits 1000 + 500 + 900 = 2400, debits 200+300+400+600 = 1500
            "bal_drawdown_90": -0.375,  # (1500 - 2400) / 2400
        },
    )


# --- spending ------------------------------------------------------------------------------


def test_spending_sums_ratios_diversity_ticket_weekend(features):
    c = customer("C")
    transactions = [
        # last 7 days
        txn("C", datetime(2024, 6, 29, 20), 30.0, category="dining", merchant_id="D1"),  # Sat
        txn("C", datetime(2024, 6, 25, 9), 50.0, category="groceries", merchant_id="G1"),
        # rest of the last 30 days
        txn("C", datetime(2024, 6, 15, 14), 120.0, category="shopping", merchant_id="S1"),  # Sat
        txn("C", datetime(2024, 6, 3, 8), 800.0, category="rent", merchant_id="R1"),
        txn("C", datetime(2024, 6, 10, 8), 100.0, category="transfer", merchant_id=None),
        txn("C", datetime(2024, 6, 12), 999.0, "credit", "transfer", None, "transfer"),
        # baseline, [05-02, 06-01)
        txn("C", datetime(2024, 5, 18, 19), 60.0, category="dining", merchant_id="D1"),  # Sat
        txn("C", datetime(2024, 5, 20, 19), 90.0, category="groceries", merchant_id="G1"),
        # baseline, [04-02, 05-02)
        txn("C", datetime(2024, 4, 3, 8), 800.0, category="rent", merchant_id="R1"),
        # baseline, [03-03, 04-02)
        txn("C", datetime(2024, 3, 10, 21), 150.0, category="entertainment", merchant_id="E1"),
        txn("C", datetime(2024, 3, 12, 7), 100.0, category="utilities", merchant_id="U1"),
    ]
    check(
        features(c, transactions, []),
        {
            "spend_total_7": 80.0,
            "spend_total_30": 1100.0,  # 80 + 120 + 800 + 100
            # baseline debits 60 + 90 + 800 + 150 + 100 = 1200
            "spend_total_7_vs_baseline": 6 / 7,  # 80 / (1200 * 7 / 90)
            "spend_total_30_vs_baseline": 2.75,  # 1100 / 400
            "spend_discretionary_7": 30.0,
            "spend_discretionary_30": 150.0,  # 30 + 120
            "spend_discretionary_30_vs_baseline": 15 / 7,  # 150 / ((60 + 150) / 3)
            "spend_essential_7": 50.0,
            "spend_essential_30": 850.0,  # 50 + 800
            "spend_essential_30_vs_baseline": 85 / 33,  # 850 / ((90 + 800 + 100) / 3)
            # merchants: {D1, G1, S1, R1} vs {D1, G1}, {R1}, {E1, U1}: 4 / (5 / 3)
            "spend_merchant_diversity_change": 2.4,
            "spend_avg_ticket_change": 11 / 12,  # (1100 / 5) / (1200 / 5)
            # weekend: (30 + 120) / 1100 now, (60 + 150) / 1200 = 0.175 in the baseline
            "spend_weekend_share_change": 150 / 1100 - 0.175,
        },
    )


# --- cash ----------------------------------------------------------------------------------


def test_cash_atm_withdrawals(features):
    c = customer("C")
    transactions = [
        txn("C", datetime(2024, 6, 28), 100.0, category="cash", channel="atm"),
        txn("C", datetime(2024, 6, 20), 60.0, category="cash", channel="branch"),
        txn("C", datetime(2024, 6, 15), 40.0, category="transfer", channel="atm"),
        txn("C", datetime(2024, 6, 10), 200.0, category="groceries", channel="card"),
        txn("C", datetime(2024, 6, 5), 500.0, "credit", "cash", None, "atm"),  # a deposit
        # baseline: three withdrawals, mean 70
        txn("C", datetime(2024, 5, 20), 50.0, category="cash", channel="atm"),
        txn("C", datetime(2024, 4, 20), 70.0, category="cash", channel="atm"),
        txn("C", datetime(2024, 3, 20), 90.0, category="cash", channel=None),
    ]
    check(
        features(c, transactions, []),
        {
            "cash_atm_count_30": 3.0,
            "cash_atm_count_change": 2.0,  # 3 - 3 / 3
            "cash_atm_amount_change": 20 / 21,  # (200 / 3) / 70
            "cash_reliance_30": 0.5,  # 200 / 400
        },
    )


# --- activity ------------------------------------------------------------------------------


def test_activity_for_a_new_customer(features):
    # created 06-10 15:00: days 06-10 .. 06-30 (21 days), active on 10, 12, 20, 30 -> 17
    c = customer("C", created_at=datetime(2024, 6, 10, 15))
    transactions = [
        txn("C", datetime(2024, 6, 10, 16)),
        txn("C", datetime(2024, 6, 10, 20), 5.0, "credit", "transfer", None, "transfer"),
        txn("C", datetime(2024, 6, 12, 3)),
        txn("C", datetime(2024, 6, 20, 23, 59, 59)),
        txn("C", datetime(2024, 6, 30, 18)),
    ]
    check(
        features(c, transactions, []),
        {
            "act_txn_count_30": 5.0,
            "act_txn_count_change": NAN,  # no baseline transaction
            "act_inactive_days_30": 17.0,
            "act_days_since_last_txn": 0.25,  # 06-30 18:00 -> t
        },
    )


def test_activity_against_the_baseline(features):
    # last 30 days: 4 transactions on 3 days (06-01 00:00 counts, 05-31 23:00 does not)
    # baseline: 6 transactions -> 4 / (6 / 3) = 2
    c = customer("C", created_at=datetime(2023, 1, 1))
    transactions = [
        txn("C", datetime(2024, 6, 1)),
        txn("C", datetime(2024, 6, 1, 12)),
        txn("C", datetime(2024, 6, 15)),
        txn("C", datetime(2024, 6, 27, 6)),
        txn("C", datetime(2024, 5, 31, 23)),
        *[txn("C", datetime(2024, m, d)) for m, d in [(5, 20), (5, 10), (4, 30), (4, 20), (4, 10)]],
    ]
    check(
        features(c, transactions, []),
        {
            "act_txn_count_30": 4.0,
            "act_txn_count_change": 2.0,
            "act_inactive_days_30": 27.0,  # 30 days, active on 06-01, 06-15, 06-27
            "act_days_since_last_txn": 3.75,  # 06-27 06:00 -> t
        },
    )


# --- profile -------------------------------------------------------------------------------


def test_profile(features):
    # 2023-07-01 12:00 -> 2024-07-01 00:00: 366 days (29 Feb 2024) minus 12 hours
    c = customer("C", created_at=datetime(2023, 7, 1, 12), monthly_income=4200.0,
                 credit_limit=8000.0)  # fmt: skip
    check(
        features(c, [], []),
        {
            "prof_account_age_days": 365.5,
            "prof_monthly_income": 4200.0,
            "prof_credit_limit": 8000.0,
        },
    )


def test_profile_missing_values_and_future_account(features):
    c = customer("C", created_at=datetime(2024, 7, 3, 6), monthly_income=None, credit_limit=None)
    check(
        features(c, [], []),
        {"prof_account_age_days": -2.25, "prof_monthly_income": NAN, "prof_credit_limit": NAN},
    )
