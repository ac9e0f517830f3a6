"""Small fixtures computed by hand from docs/features.md, one or more per feature family.

Every fixture runs through both engines: the historical one (many observations; here the
asked one among decoy observations of the same and another customer) and the online one
(one date; here the asked customer next to another). A neighbour customer "N" with rows of
every source at the same times is always present, so a window leaking across customers shows.

Every observation is at t = 2024-07-01 (midnight UTC). Useful dates (2024 is a leap year):
t-30 = 06-01, t-60 = 05-02, t-90 = 04-02, t-120 = 03-03, t-150 = 02-02, t-180 = 01-03,
t-360 = 2023-07-07. The 30-day periods of a window ending at t: P1 = [06-01, 07-01),
P2 = [05-02, 06-01), P3 = [04-02, 05-02), P4 = [03-03, 04-02), P5 = [02-02, 03-03),
P6 = [01-03, 02-02), ..., P12 = [2023-07-07, 2023-08-06).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

import polars as pl
import pytest

from predelinq.features import feature_set, features_at_date, features_for_observations
from support.reference_features import CUSTOMER_SCHEMA, PAYMENT_SCHEMA, TRANSACTION_SCHEMA

T = date(2024, 7, 1)
NAN = math.nan
AUTO = "<auto>"


def customer(
    customer_id: str = "C",
    created_at: datetime = datetime(2023, 1, 1),
    monthly_income: float | None = 3000.0,
    salary_day: float | None = 25.0,
    credit_limit: float | None = 1000.0,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "created_at": created_at,
        "monthly_income": monthly_income,
        "salary_day": salary_day,
        "credit_limit": credit_limit,
    }


def tx(
    when: datetime,
    amount: float = 10.0,
    txn_type: str = "debit",
    category: str | None = "groceries",
    merchant_id: str | None = None,
    channel: str | None = "card",
    balance_after: float | None = None,
    *,
    txn_id: str | None = AUTO,
    customer_id: str = "C",
) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "customer_id": customer_id,
        "txn_time": when,
        "amount": amount,
        "txn_type": txn_type,
        "category": category,
        "merchant_id": merchant_id,
        "channel": channel,
        "balance_after": balance_after,
    }


def credit(
    when: datetime,
    amount: float,
    category: str | None = "transfer",
    channel: str | None = "transfer",
    **kwargs: Any,
) -> dict[str, Any]:
    return tx(when, amount, "credit", category, channel=channel, **kwargs)


def statement(
    due_date: date,
    amount_due: float,
    paid_date: date | None = None,
    amount_paid: float | str | None = AUTO,
    customer_id: str = "C",
) -> dict[str, Any]:
    """A statement; paid in full when a paid date is given, unless ``amount_paid`` says."""
    if amount_paid == AUTO:
        amount_paid = amount_due if paid_date is not None else None
    return {
        "customer_id": customer_id,
        "due_date": due_date,
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "paid_date": paid_date,
    }


# The neighbour: rows of every source, some at the same times as the fixtures' rows, with
# large, negative, fee, salary and unpaid values that would show in C's features if leaked.
NEIGHBOUR_CUSTOMER = customer("N", datetime(2020, 1, 1), 99_999.0, 1.0, 50.0)
NEIGHBOUR_TRANSACTIONS = [
    tx(datetime(2023, 5, 1), 9000.0, "credit", "salary", "EMPN", balance_after=-7000.0),
    tx(datetime(2024, 3, 1), 444.0, category="fees", balance_after=-7444.0),
    tx(datetime(2024, 5, 28, 10), 9000.0, "credit", "salary", "EMPN"),
    tx(datetime(2024, 6, 10, 6), 777.0, category="penalty_interest", channel="atm"),
    tx(datetime(2024, 6, 15, 18), 555.0, category="returned_payment", balance_after=-9999.0),
    tx(datetime(2024, 6, 30, 23, 59, 59), 1.0, category="POPLATEK"),
    tx(datetime(2024, 7, 1), 123.0, category="fees"),
]
NEIGHBOUR_STATEMENTS = [
    statement(date(2023, 6, 1), 5000.0),
    statement(date(2024, 6, 20), 5000.0, date(2024, 6, 21), 1.0),
]
for row in NEIGHBOUR_TRANSACTIONS + NEIGHBOUR_STATEMENTS:
    row["customer_id"] = "N"


def inputs_of(
    customers: Iterable[dict],
    transactions: Iterable[dict],
    statements: Iterable[dict],
    *,
    balance_after: bool = True,
) -> dict[str, pl.DataFrame]:
    rows = [dict(row) for row in transactions]
    for k, row in enumerate(rows):
        if row["txn_id"] == AUTO:
            row["txn_id"] = f"{row['customer_id']}-{k:03d}"
    frame = pl.DataFrame(rows, schema=TRANSACTION_SCHEMA)
    if not balance_after:  # the optional column is absent altogether
        frame = frame.drop("balance_after")
    return {
        "customers": pl.DataFrame(list(customers), schema=CUSTOMER_SCHEMA),
        "transactions": frame,
        "payments": pl.DataFrame(list(statements), schema=PAYMENT_SCHEMA),
    }


Compute = Callable[..., dict[str, float]]
DEFAULT_CUSTOMER = customer()  # created 2023-01-01, income 3000, salary day 25, limit 1000


@pytest.fixture(params=["historical", "online"])
def compute(request) -> Compute:
    """compute(transactions, statements, ...) -> {feature: value} of customer "C" at t."""

    def run(
        transactions: Iterable[dict] = (),
        statements: Iterable[dict] = (),
        *,
        cust: dict | None = DEFAULT_CUSTOMER,
        categories: Mapping[str, str] | None = None,
        user_features: Iterable[Mapping[str, Any]] = (),
        balance_after: bool = True,
    ) -> dict[str, float]:
        customers = [NEIGHBOUR_CUSTOMER] + ([dict(cust)] if cust is not None else [])
        inputs = inputs_of(
            customers,
            [*NEIGHBOUR_TRANSACTIONS, *transactions],
            [*NEIGHBOUR_STATEMENTS, *statements],
            balance_after=balance_after,
        )
        features = feature_set(list(user_features), categories)
        if request.param == "online":
            frame = features_at_date(["N", "C"], T, inputs, features)
        else:
            observations = pl.DataFrame(
                {
                    "customer_id": ["N", "C", "C", "N", "C"],
                    "observation_date": [
                        T,
                        date(2024, 2, 1),
                        T,
                        date(2023, 1, 1),
                        date(2025, 1, 1),
                    ],
                }
            )
            frame = features_for_observations(observations, inputs, features)
            assert frame["customer_id"].to_list() == observations["customer_id"].to_list()
        row = frame.filter((pl.col("customer_id") == "C") & (pl.col("observation_date") == T))
        assert row.height == 1
        assert list(frame.columns[2:]) == list(features.names)
        return row.row(0, named=True)

    run.engine = request.param  # type: ignore[attr-defined]
    return run


def check(got: Mapping[str, float], expected: Mapping[str, float]) -> None:
    wrong = [
        f"{name}: expected {want!r}, got {got[name]!r}"
        for name, want in expected.items()
        if not (
            (math.isnan(want) and math.isnan(got[name]))
            or math.isclose(got[name], want, rel_tol=1e-9, abs_tol=1e-9)
        )
    ]
    assert not wrong, "\n".join(wrong)


# --- balance -------------------------------------------------------------------------------


def test_balance_after_with_gaps_anchors_at_the_last_given_balance(compute):
    # balance: before any given balance the running sum of flows; after one, that balance plus
    # the flows since (all rows in [06-01, 07-01); nothing before 06-05)
    transactions = [
        credit(datetime(2024, 6, 5), 100.0),  # empty, nothing given yet: +100        -> 100
        tx(datetime(2024, 6, 10), 30.0, balance_after=500.0),  # given               -> 500
        tx(datetime(2024, 6, 15), 50.0),  # empty: 500 - 50                           -> 450
        credit(datetime(2024, 6, 20), 200.0),  # empty: 450 + 200                     -> 650
        tx(datetime(2024, 6, 25), 100.0, balance_after=1000.0),  # given (a fee we missed) 1000
        tx(datetime(2024, 6, 28), 40.0),  # empty: 1000 - 40                          -> 960
    ]
    # bal_mean_30: no state before 06-05, then each balance held 5, 5, 5, 5, 3, 3 days:
    # (100*5 + 500*5 + 450*5 + 650*5 + 1000*3 + 960*3) / 26 = 14380 / 26
    check(
        compute(transactions),
        {
            "bal_last": 960.0,
            "bal_min_30": 100.0,
            "bal_max_30": 1000.0,
            "bal_mean_30": 14380 / 26,
            "bal_net_flow_30": 80.0,  # 100 - 30 - 50 + 200 - 100 - 40
            "od_days_below_zero_30": 0.0,
            "od_negative_count_90": 0.0,
        },
    )


def test_balance_without_balance_after_is_the_running_sum_of_flows(compute):
    transactions = [
        credit(datetime(2024, 3, 10), 1000.0),  # 1000
        tx(datetime(2024, 4, 10), 1500.0),  # -500
        credit(datetime(2024, 5, 10), 300.0),  # -200
        tx(datetime(2024, 6, 10), 100.0),  # -300
        credit(datetime(2024, 6, 20), 800.0),  # 500
    ]
    # last 90 days [04-02, 07-01): balances -500 (04-10), -200 (05-10), -300 (06-10), 500 (06-20)
    # slope: x = 0, 30, 61, 71 days; n = 4, sx = 162, sy = -500, sxx = 9662, sxy = 11200
    #   (4 * 11200 - 162 * -500) / (4 * 9662 - 162^2) = 125800 / 12404
    # std: mean -125, squared deviations 140625 + 5625 + 30625 + 390625 = 567500, / 3
    # below zero in the last 90 days: 04-10 -> 06-20 = 30 + 31 + 10 = 71 days; the window
    # opens at 04-02 with the state of 03-10 (1000, not below)
    # last 30 days: opens with the state of 05-10 (-200) until 06-10 (9 days), -300 until 06-20
    # (10 days), 500 until t (11 days): below zero 19 days; mean (-1800 - 3000 + 5500) / 30
    check(
        compute(transactions, balance_after=False),
        {
            "bal_last": 500.0,
            "bal_min_30": -300.0,
            "bal_min_90": -500.0,
            "bal_max_90": 500.0,
            "bal_max_180": 1000.0,
            "bal_std_90": math.sqrt(567500 / 3),
            "bal_trend_90": 125800 / 12404,
            "bal_mean_30": 700 / 30,
            "od_days_below_zero_30": 19.0,
            "od_days_below_zero_90": 71.0,
            "od_negative_count_90": 3.0,
            "bal_net_flow_90": -500.0,  # -1500 + 300 - 100 + 800
            "inc_inflow_90": 1100.0,
            "bal_drawdown_90": 500 / 1100,  # -1 x -500 / 1100
            "bal_min_to_inflow_90": -1500 / 1100,  # 3 x -500 / 1100
        },
    )


OVERDRAFT = [
    credit(datetime(2024, 5, 20, 12), 200.0, balance_after=200.0),
    tx(datetime(2024, 6, 10, 6), 500.0, category="rent", balance_after=-300.0),
    tx(datetime(2024, 6, 12, 18), 20.0, category="fees", balance_after=-320.0),
    credit(datetime(2024, 6, 15, 18), 1000.0, balance_after=680.0),
    tx(datetime(2024, 6, 25), 80.0, balance_after=600.0),
]


def test_time_weighted_balance_and_days_below_zero_mid_window(compute):
    # last 30 days [06-01, 07-01): the state carried in from 05-20 (200) holds 06-01 ->
    # 06-10 06:00 (9.25 days), -300 for 2.5 days, -320 for 3 days, 680 06-15 18:00 -> 06-25
    # (9.25 days), 600 for 6 days: 30 days in all
    #   (200*9.25 - 300*2.5 - 320*3 + 680*9.25 + 600*6) / 30 = 10030 / 30
    # below zero: 06-10 06:00 -> 06-15 18:00 = 5.5 days
    # 90 and 180 days: nothing held before the first row (05-20 12:00); 200 holds 20.75 days
    #   (4150 - 750 - 960 + 6290 + 3600) / 41.5 = 12330 / 41.5
    got = compute(
        OVERDRAFT,
        user_features=[
            {
                "name": "fee_share_of_debits_90",
                "source": "transactions",
                "where": {"category": "fees", "txn_type": "debit"},
                "value": "amount",
                "agg": "sum",
                "window": 90,
                "ratio": {
                    "where": {"txn_type": "debit"},
                    "value": "amount",
                    "agg": "sum",
                    "window": 90,
                },
            },
            {
                "name": "days_deep_overdraft_90",
                "source": "transactions",
                "where": {"balance": {"lt": -310}},
                "agg": "days",
                "window": 90,
            },
            {
                "name": "log_net_flow_30",
                "source": "transactions",
                "value": "flow",
                "agg": "sum",
                "window": 30,
                "transform": "log1p",
            },
        ],
    )
    check(
        got,
        {
            "bal_mean_30": 10030 / 30,
            "bal_mean_90": 12330 / 41.5,
            "bal_mean_180": 12330 / 41.5,
            "bal_mean_30_vs_180": 10030 / 30 - 12330 / 41.5,
            "od_days_below_zero_30": 5.5,
            "od_days_below_zero_90": 5.5,
            "od_negative_count_90": 2.0,
            "bal_min_30": -320.0,
            "bal_max_30": 680.0,
            "bal_last": 600.0,
            "od_fee_count_90": 1.0,
            "od_fee_amount_180": 20.0,
            "od_fee_days_since_last": 18.25,  # 06-12 18:00 -> t
            "fee_share_of_debits_90": 20 / 600,  # debits 500 + 20 + 80
            "days_deep_overdraft_90": 3.0,  # -320: 06-12 18:00 -> 06-15 18:00
            "log_net_flow_30": math.log1p(400.0),  # -500 - 20 + 1000 - 80
        },
    )


@pytest.mark.parametrize(
    ("second_id", "expected"),
    [("B", 70.0), (None, 70.0)],  # "A" then "B"; "A" then the empty id (empty ids last)
)
def test_same_time_rows_are_ordered_by_txn_id(compute, second_id, expected):
    # listed second-first: the later row by txn_id comes first in the file
    at = datetime(2024, 6, 10, 12)
    transactions = [
        tx(at, 30.0, balance_after=70.0, txn_id=second_id),
        credit(at, 100.0, balance_after=100.0, txn_id="A"),
    ]
    check(compute(transactions), {"bal_last": expected})


def test_same_time_rows_ordered_by_txn_id_decide_the_anchoring(compute):
    # "A" (credit 100, given 100) comes before "B" (debit 30, empty): B = 100 - 30 = 70.
    # In file order (B first) B would be -30 and the last balance A's 100.
    at = datetime(2024, 6, 10, 12)
    transactions = [tx(at, 30.0, txn_id="B"), credit(at, 100.0, balance_after=100.0, txn_id="A")]
    check(compute(transactions), {"bal_last": 70.0, "bal_min_30": 70.0, "bal_max_30": 100.0})


# --- overdraft: fees, penalty interest, returned payments; lender codes ------------------------


CHARGES = [
    tx(datetime(2024, 6, 20, 12), 15.0, category="POPLATEK"),  # fees by the mapping
    tx(datetime(2024, 5, 15), 15.0, category="fees"),
    tx(datetime(2024, 2, 10), 15.0, category="fees"),  # in 180 days, not in 90
    credit(datetime(2024, 6, 22), 15.0, category="fees"),  # a refund: not a fee charged
    tx(datetime(2024, 6, 25, 6), 7.5, category="SANKC. UROK"),  # penalty_interest by the mapping
    tx(datetime(2024, 3, 1), 2.5, category="penalty_interest"),
    tx(datetime(2023, 12, 1), 4.0, category="penalty_interest"),  # before t-180
    tx(datetime(2024, 6, 28), 1.0, category="sankc. urok"),  # case differs: not mapped
    credit(datetime(2024, 4, 15), 250.0, category="returned_payment"),
    tx(datetime(2024, 6, 1), 250.0, category="VRACENI PLATBY"),  # returned_payment by the mapping
]
LENDER_CODES = {
    "POPLATEK": "fees",
    "SANKC. UROK": "penalty_interest",
    "VRACENI PLATBY": "returned_payment",
}


def test_fees_penalty_interest_and_returned_payments_with_lender_codes(compute):
    check(
        compute(CHARGES, categories=LENDER_CODES),
        {
            "od_fee_count_90": 2.0,  # 06-20, 05-15
            "od_fee_count_180": 3.0,  # and 02-10
            "od_fee_amount_180": 45.0,
            "od_fee_days_since_last": 10.5,  # 06-20 12:00 -> t
            "od_penalty_count_180": 2.0,  # 06-25, 03-01
            "od_penalty_amount_180": 10.0,  # 7.5 + 2.5
            "od_penalty_days_since_last": 5.75,  # 06-25 06:00 -> t
            "od_returned_count_180": 2.0,  # 04-15, 06-01
            "od_returned_days_since_last": 30.0,  # 06-01 -> t
        },
    )


def test_unmapped_lender_codes_are_kept_as_they_are(compute):
    check(
        compute(CHARGES),
        {
            "od_fee_count_90": 1.0,  # 05-15 only
            "od_fee_count_180": 2.0,
            "od_fee_amount_180": 30.0,
            "od_fee_days_since_last": 47.0,  # 05-15 -> 06-01 (17) -> t (30)
            "od_penalty_count_180": 1.0,  # 03-01
            "od_penalty_amount_180": 2.5,
            "od_penalty_days_since_last": 122.0,  # 03-01 -> t: 31 + 30 + 31 + 30
            "od_returned_count_180": 1.0,
            "od_returned_days_since_last": 77.0,  # 04-15 -> 05-15 (30) -> 06-15 (31) -> t (16)
        },
    )


# --- income ------------------------------------------------------------------------------------


INCOME_COUNT = {
    "name": "income_count",
    "source": "transactions",
    "where": {"income": True},
    "agg": "count",
}
INCOME_SUM = {
    "name": "income_sum",
    "source": "transactions",
    "where": {"income": True},
    "value": "amount",
    "agg": "sum",
}


def test_income_detection(compute):
    transactions = [
        # a monthly employer credit of similar amounts: income from its 2nd occurrence
        credit(datetime(2024, 3, 28, 10), 2000.0, merchant_id="EMP"),  # first: not yet
        credit(datetime(2024, 4, 27, 10), 2100.0, merchant_id="EMP"),  # 30 d, 2000/2100 ok
        credit(datetime(2024, 5, 28, 10), 1900.0, merchant_id="EMP"),  # 31 d, 2100/1900 ok
        credit(datetime(2024, 6, 27, 10), 2000.0, merchant_id="EMP"),  # 30 d, 1900/2000 ok
        # the same counterparty 60 days later: not income
        credit(datetime(2024, 4, 5), 500.0, merchant_id="GIFT"),
        credit(datetime(2024, 6, 4), 500.0, merchant_id="GIFT"),
        # monthly interest of the same amount: never income
        credit(datetime(2024, 5, 31), 5.0, category="interest", merchant_id="BANK"),
        credit(datetime(2024, 6, 30), 5.0, category="interest", merchant_id="BANK"),
        # category salary: income from the first one (a lender's "SALARY" mapped to it too)
        credit(datetime(2024, 6, 15), 300.0, category="salary", merchant_id="BONUS"),
        credit(datetime(2024, 6, 22), 50.0, category="SALARY", merchant_id="ODD"),
        # monthly but twice the amount: not income
        credit(datetime(2024, 5, 10), 100.0, merchant_id="SIDE"),
        credit(datetime(2024, 6, 9), 200.0, merchant_id="SIDE"),
        # no merchant: the same category is the counterparty; the 2nd is income
        credit(datetime(2024, 5, 20), 1000.0, category="pension"),
        credit(datetime(2024, 6, 19), 1000.0, category="pension"),
        # recurring debits are not income
        tx(datetime(2024, 5, 3), 800.0, category="rent", merchant_id="LANDLORD"),
        tx(datetime(2024, 6, 3), 800.0, category="rent", merchant_id="LANDLORD"),
    ]
    # income: EMP 2100, 1900, 2000; BONUS 300; ODD 50; pension 1000 -> 6 credits, 7350
    check(
        compute(
            transactions,
            categories={"SALARY": "salary"},
            user_features=[INCOME_COUNT, INCOME_SUM],
        ),
        {
            "income_count": 6.0,
            "income_sum": 7350.0,
            "inc_income_90": 7350.0,  # all since 04-27
            "inc_days_since_last": 3 + 14 / 24,  # 06-27 10:00 -> t
            # all credits in [06-01, t): 2000 + 500 + 5 + 300 + 50 + 200 + 1000
            "inc_inflow_30": 4055.0,
            "inc_credit_max_90": 2100.0,
            "inc_last_vs_mean_180": 2000 / (7350 / 6),
        },
    )


def test_income_recurs_against_one_of_the_three_previous_credits(compute):
    # 05-31 1000: EMP's credit two before it (05-01, 1000) came 30 days before -> income,
    # although a small credit from EMP came in between (05-26, 50; 1000 is not within
    # 0.75..1.33 x 50)
    transactions = [
        credit(datetime(2024, 5, 1), 1000.0, merchant_id="EMP"),
        credit(datetime(2024, 5, 26), 50.0, merchant_id="EMP"),
        credit(datetime(2024, 5, 31), 1000.0, merchant_id="EMP"),
    ]
    check(compute(transactions, user_features=[INCOME_COUNT]), {"income_count": 1.0})


def test_months_without_income_and_regularity(compute):
    # the customer's first row (02-10, a debit) is in P5: periods P1..P4 start after it and
    # count, P5 and P6 do not. Salary credits: P4 3000 (03-05), P3 3000 (04-05), P2 none,
    # P1 2400 + 600 (06-05, 06-20).
    # months without: P2 -> 1
    # regularity over P1..P4 sums 3000, 0, 3000, 3000: mean 2250, population std
    #   sqrt((3 * 750^2 + 2250^2) / 4) = 750 sqrt(3) -> cv 1 / sqrt(3)
    # (were the first income the start, P4 would not count: 3000, 0, 3000 -> cv 1 / sqrt(2))
    transactions = [
        tx(datetime(2024, 2, 10), 20.0),
        credit(datetime(2024, 3, 5), 3000.0, category="salary"),
        credit(datetime(2024, 4, 5), 3000.0, category="salary"),
        credit(datetime(2024, 6, 5), 2400.0, category="salary"),
        credit(datetime(2024, 6, 20), 600.0, category="salary"),
    ]
    check(
        compute(transactions),
        {
            "inc_months_without_180": 1.0,
            "inc_regularity_180": 1 / math.sqrt(3),
            "inc_inflow_months_without_180": 1.0,
            "inc_inflow_regularity_180": 1 / math.sqrt(3),
            "inc_income_90": 6000.0,  # 3000 + 2400 + 600
            "inc_days_since_last": 11.0,  # 06-20 -> t
            "inc_last_vs_mean_180": 600 / 2250,  # last 600 / mean of 3000, 3000, 2400, 600
            "act_months_active_360": 4.0,  # P1, P3, P4, P5
        },
    )


def test_periods_with_rows_at_midnight_on_their_boundaries(compute):
    # date-only ledgers put every row at midnight; a period [end - 30k, end - 30(k-1)) holds
    # a row at its very start. First row 2023-07-07 (t-360, P12's start): every period of
    # the last 180 days counts. Salaries at the starts of P6 (01-03), P4 (03-03), P1 (06-01):
    # months without: P2, P3, P5 -> 3; sums P1..P6 3000, 0, 0, 3000, 0, 3000: mean 1500,
    # population std 1500 -> cv 1
    transactions = [
        tx(datetime(2023, 7, 7), 10.0),
        credit(datetime(2024, 1, 3), 3000.0, category="salary"),
        credit(datetime(2024, 3, 3), 3000.0, category="salary"),
        credit(datetime(2024, 6, 1), 3000.0, category="salary"),
    ]
    check(
        compute(transactions),
        {
            "inc_months_without_180": 3.0,
            "inc_regularity_180": 1.0,
            "inc_inflow_months_without_180": 3.0,
            "inc_inflow_regularity_180": 1.0,
            "inc_income_90": 3000.0,  # 06-01 only
            "act_months_active_360": 4.0,  # P1, P4, P6, P12
        },
    )


def test_a_row_at_a_periods_start_belongs_to_that_period(compute):
    # 06-01 00:00 is P1's start, 05-15 12:00 is in P2: two periods with a row
    transactions = [tx(datetime(2024, 5, 15, 12)), tx(datetime(2024, 6, 1))]
    check(compute(transactions), {"act_months_active_360": 2.0, "act_txn_count_30": 1.0})


# --- obligations, spending, cash -----------------------------------------------------------------


def test_obligations_spending_and_cash(compute):
    transactions = [
        # last 30 days [06-01, t): debits 1650
        tx(datetime(2024, 6, 28), 100.0, category="cash", channel="atm"),  # cash (both ways)
        tx(datetime(2024, 6, 20), 60.0, category="cash", channel="branch"),  # cash (category)
        tx(datetime(2024, 6, 15), 40.0, category="transfer", channel="atm"),  # cash (atm)
        tx(datetime(2024, 6, 10), 200.0, category="groceries"),
        tx(datetime(2024, 6, 12), 150.0, category="dining"),
        tx(datetime(2024, 6, 3), 800.0, category="rent", channel="transfer"),
        tx(datetime(2024, 6, 1), 300.0, category="loan", channel="transfer"),  # t-30: inside
        credit(datetime(2024, 6, 5), 500.0, category="cash", channel="atm"),  # a deposit
        # baseline [03-03, 06-01): debits 1800
        tx(datetime(2024, 5, 20), 90.0, category="groceries"),
        tx(datetime(2024, 5, 2), 300.0, category="loan", channel="transfer"),
        tx(datetime(2024, 4, 20), 60.0, category="cash", channel="atm"),
        tx(datetime(2024, 4, 3), 800.0, category="rent", channel="transfer"),
        tx(datetime(2024, 4, 2), 300.0, category="loan", channel="transfer"),  # t-90: inside
        tx(datetime(2024, 3, 10), 150.0, category="entertainment"),  # not in the last 90
        tx(datetime(2024, 3, 5), 100.0, category="utilities"),  # not in the last 90
        # income: salary credits
        credit(datetime(2024, 4, 25), 3000.0, category="salary"),
        credit(datetime(2024, 5, 25), 3000.0, category="salary"),
        credit(datetime(2024, 6, 25), 3000.0, category="salary"),
    ]
    # last 90 days: debits 1650 + 90 + 300 + 60 + 800 + 300 = 3200 in 12 rows; credits 9500;
    # income 9000; loan 900; loan + rent + utilities 900 + 800 + 800 = 2500
    check(
        compute(transactions),
        {
            "cash_withdrawal_count_30": 3.0,
            "cash_reliance_90": 260 / 3200,  # 100 + 60 + 40 + 60 (04-20)
            "spend_total_30": 1650.0,
            "spend_total_30_vs_baseline": 3 * 1650 / 1800,
            "spend_debit_mean_90": 3200 / 12,
            "spend_debit_max_90": 800.0,
            "spend_discretionary_30_vs_baseline": 3 * 150 / 150,  # dining / entertainment
            # groceries 200 + rent 800 / (groceries 90 + rent 800 + utilities 100)
            "spend_essential_30_vs_baseline": 3 * 1000 / 990,
            "obl_loan_90": 900.0,
            "obl_to_inflow_90": 2500 / 9500,
            "obl_to_income_90": 2500 / 9000,
            "inc_outflow_to_inflow_90": 3200 / 9500,
            "act_txn_count_30": 9.0,  # 7 debits and 2 credits
            "act_txn_count_30_vs_baseline": 3.0,  # 3 x 9 / (7 debits and 2 salaries)
        },
    )


# --- activity ----------------------------------------------------------------------------------


def test_activity(compute):
    transactions = [
        tx(datetime(2023, 7, 1, 12)),  # before t-360: first row, in no period
        tx(datetime(2023, 7, 20)),  # P12
        tx(datetime(2024, 1, 10)),  # P6
        tx(datetime(2024, 5, 31, 23)),  # P2: not in the last 30 days
        tx(datetime(2024, 6, 1)),  # P1 from here on
        tx(datetime(2024, 6, 1, 12)),
        tx(datetime(2024, 6, 15, 8)),
        tx(datetime(2024, 6, 30, 23, 59, 59)),
    ]
    check(
        compute(transactions),
        {
            "act_txn_count_30": 4.0,
            "act_txn_count_90": 5.0,
            "act_txn_count_30_vs_baseline": 12.0,  # 3 x 4 / 1
            "act_active_days_30": 3.0,  # 06-01, 06-15, 06-30
            "act_days_since_last_txn": 1 / 86400,  # one second
            "act_days_since_first_txn": 365.5,  # 2023-07-01 12:00 -> t: 366 days - 12 h
            "act_months_active_360": 4.0,  # P1, P2, P6, P12
        },
    )


# --- payments ----------------------------------------------------------------------------------


def test_payment_status_at_t(compute):
    # credit limit 1000
    # S1 due 06-10, 300, paid 06-18 in full  -> 8 days late, util 0.3
    # S2 due 05-10, 100, paid 05-08          -> 0, util 0.1
    # S3 due 04-10, 200, 50 paid 04-14       -> 4 late, partial, shortfall 0.75, util 0.2
    # S4 due 02-10, 500, never paid          -> unpaid: 02-10 -> t = 142 days, shortfall 1,
    #                                           util 0.5
    # S5 due 06-20, 100, paid 07-03 (after t)-> unpaid at t: 11 days, shortfall 1, util 0.1
    # S6 due on t                            -> not due before t: left out
    # S7 due 2023-11-15, 400, paid 12-20     -> 35 late, before t-180, util 0.4
    statements = [
        statement(date(2024, 6, 10), 300.0, date(2024, 6, 18)),
        statement(date(2024, 5, 10), 100.0, date(2024, 5, 8)),
        statement(date(2024, 4, 10), 200.0, date(2024, 4, 14), 50.0),
        statement(date(2024, 2, 10), 500.0),
        statement(date(2024, 6, 20), 100.0, date(2024, 7, 3)),
        statement(date(2024, 7, 1), 100.0),
        statement(date(2023, 11, 15), 400.0, date(2023, 12, 20)),
    ]
    check(
        compute((), statements),
        {
            "pay_unpaid_past_due_count": 2.0,  # S4, S5
            "pay_statement_count": 6.0,  # S1..S5, S7
            "pay_days_late_max_all": 142.0,
            "pay_days_late_mean_90": 5.75,  # S1, S2, S3, S5: (8 + 0 + 4 + 11) / 4
            "pay_days_late_max_90": 11.0,
            "pay_days_late_mean_180": 33.0,  # (8 + 0 + 4 + 142 + 11) / 5
            "pay_days_late_max_180": 142.0,
            "pay_late_count_180": 4.0,  # S1, S3, S4, S5
            "pay_partial_share_180": 0.2,  # S3 of 5 (unpaid is not partial)
            "pay_shortfall_mean_180": 0.55,  # (0 + 0 + 0.75 + 1 + 1) / 5
            "pay_paid_to_due_180": 450 / 1200,  # (300 + 100 + 50) / (300 + 100 + 200 + 500 + 100)
            # [05-02, t): S1, S2, S5 -> 19 / 3; [01-03, 05-02): S3, S4 -> 73
            "pay_lateness_shift": 19 / 3 - 73,
            "pay_utilisation_latest": 0.1,  # S5
            "pay_utilisation_change": 0.1 - 0.35,  # minus mean of S3, S4
            "pay_days_since_last_late": 11.0,  # S5 due 06-20
        },
    )


def test_payment_paid_on_t_empty_amount_and_nothing_due(compute):
    # due 06-25, paid on t: not paid before t -> unpaid, 6 days late, shortfall 1
    # due 06-28, paid 06-30 with an empty amount_paid -> paid 0: 2 days late, partial,
    #   shortfall 1
    # due 06-29, 0 due, paid 0 on time -> shortfall NaN (nothing due), not partial
    # no credit limit: utilisation NaN
    statements = [
        statement(date(2024, 6, 25), 100.0, date(2024, 7, 1)),
        statement(date(2024, 6, 28), 100.0, date(2024, 6, 30), None),
        statement(date(2024, 6, 29), 0.0, date(2024, 6, 29), 0.0),
    ]
    check(
        compute((), statements, cust=customer(credit_limit=None)),
        {
            "pay_unpaid_past_due_count": 1.0,
            "pay_days_late_mean_90": 8 / 3,  # (6 + 2 + 0) / 3
            "pay_late_count_180": 2.0,
            "pay_partial_share_180": 1 / 3,
            "pay_shortfall_mean_180": 1.0,  # the NaN left out
            "pay_paid_to_due_180": 0.0,  # 0 / 200
            "pay_lateness_shift": NAN,  # nothing due in [01-03, 05-02)
            "pay_utilisation_latest": NAN,
            "pay_days_since_last_late": 3.0,  # 06-28 -> t
        },
    )


def test_statements_before_t_but_none_in_the_window(compute):
    statements = [statement(date(2023, 1, 10), 300.0, date(2023, 1, 9))]
    check(
        compute((), statements),
        {
            "pay_statement_count": 1.0,
            "pay_unpaid_past_due_count": 0.0,
            "pay_late_count_180": 0.0,  # a count: 0
            "pay_days_late_mean_90": NAN,  # a mean: NaN
            "pay_days_late_max_180": NAN,
            "pay_days_late_max_all": 0.0,
            "pay_paid_to_due_180": NAN,  # 0 / 0
            "pay_days_since_last_late": NAN,  # never late
            "pay_utilisation_latest": 0.3,  # 300 / 1000
        },
    )


def test_no_statement_before_t_means_every_payment_feature_is_nan(compute):
    got = compute([tx(datetime(2024, 6, 1))], [statement(date(2024, 7, 1), 100.0)])
    check(got, {name: NAN for name in got if name.startswith("pay_")})


# --- profile -----------------------------------------------------------------------------------


def test_profile(compute):
    # 2023-07-01 12:00 -> t: 366 days (29 Feb 2024) minus 12 hours
    cust = customer(created_at=datetime(2023, 7, 1, 12), monthly_income=4200.0, credit_limit=8000.0)
    check(
        compute(cust=cust),
        {
            "prof_account_age_days": 365.5,
            "prof_monthly_income": 4200.0,
            "prof_credit_limit": 8000.0,
        },
    )


def test_profile_empty_values_and_an_account_created_after_t(compute):
    cust = customer(created_at=datetime(2024, 7, 3, 6), monthly_income=None, credit_limit=None)
    check(
        compute(cust=cust),
        {"prof_account_age_days": -2.25, "prof_monthly_income": NAN, "prof_credit_limit": NAN},
    )


def test_no_customers_row_means_nan_profile(compute):
    got = compute([tx(datetime(2024, 6, 1))], cust=None)
    check(got, {name: NAN for name in got if name.startswith("prof_")})
    check(got, {"act_txn_count_30": 1.0})


# --- missing and zero ---------------------------------------------------------------------------


def transaction_feature_names() -> list[str]:
    return [f.name for f in feature_set().features if f.source == "transactions"]


def test_no_transaction_before_t_means_every_transaction_feature_is_nan(compute):
    # rows on t and after do not exist yet; the customer has statements and a customers row
    transactions = [
        credit(datetime(2024, 7, 1), 5000.0, category="salary", balance_after=5000.0),
        tx(datetime(2024, 7, 5), 70.0, category="fees"),
    ]
    statements = [statement(date(2024, 6, 1), 100.0, date(2024, 6, 3))]
    got = compute(transactions, statements)
    check(got, {name: NAN for name in transaction_feature_names()})
    check(got, {"pay_statement_count": 1.0, "prof_credit_limit": 1000.0})


def test_transactions_before_t_but_none_in_the_window(compute):
    # one debit of 50 on 2023-06-01 12:00 (relative balance -50), nothing since
    got = compute([tx(datetime(2023, 6, 1, 12), 50.0)])
    zeros = [
        "act_txn_count_30",
        "act_txn_count_90",
        "act_active_days_30",
        "act_months_active_360",
        "od_fee_count_90",
        "od_negative_count_90",
        "od_returned_count_180",
        "cash_withdrawal_count_30",
        "spend_total_30",
        "inc_inflow_30",
        "inc_income_90",
        "bal_net_flow_30",
        "od_fee_amount_180",
        "obl_loan_90",
    ]
    nans = [
        "spend_debit_mean_90",
        "spend_debit_max_90",
        "bal_min_30",
        "bal_max_90",
        "bal_std_90",
        "bal_trend_90",
        "inc_credit_max_90",
        "inc_regularity_180",  # every period's sum 0: mean 0
        "od_fee_days_since_last",  # never a fee
        "inc_days_since_last",  # never income
        "inc_last_vs_mean_180",
        "inc_outflow_to_inflow_90",  # 0 / 0
        "spend_total_30_vs_baseline",
        "bal_drawdown_90",
        "cash_reliance_90",
    ]
    check(
        got,
        {
            **dict.fromkeys(zeros, 0.0),
            **dict.fromkeys(nans, NAN),
            "bal_last": -50.0,
            "act_days_since_last_txn": 395.5,  # 2023-06-01 12:00 -> 2024-06-01 (366 d) -> t
            "act_days_since_first_txn": 395.5,
            # the state of the last row before a window holds through it (days, time_mean)
            "bal_mean_30": -50.0,
            "od_days_below_zero_30": 30.0,
            "od_days_below_zero_180": 180.0,
            # every period starts after the first row: 6 periods, none with income or credit
            "inc_months_without_180": 6.0,
            "inc_inflow_months_without_180": 6.0,
        },
    )
