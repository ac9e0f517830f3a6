"""A slow, obviously correct reference for the features of ``docs/features.md``.

Written only from the specification (never from ``src/predelinq/features``), in plain Python:
one observation at a time, one small function per family, loops and ``datetime`` arithmetic.
The fast path is tested against it in ``test_features_reference.py``.

Readings of the specification where it leaves room (each repeated at the place it is used):

* R1 shortfall: ``paid`` is ``amount_paid`` (0 if empty) when paid at t and 0 when unpaid at
  t, so an unpaid statement has shortfall 1 (not 0).
* R2 partial: a statement paid at t with an empty ``amount_paid`` counts as paid 0, hence
  partial when ``amount_due > 0`` (the same "0 if empty" as the shortfall).
* R3 ``pay_utilisation_latest``: several statements sharing the latest due date -> the mean
  of their utilisations (the synthetic data never has such ties).
* R4 ``sal_amount_deviation``: "last salary" is the last salary credit before t however old
  (as the spec now says); the 180 days bound only the customer's own reference salaries.
* R5 ``sal_missing_months_180``: a customer with no salary credit before t gets NaN, like every
  salary feature (the spec now says so: no events of the family, no invented 0).
* R6 ``spend_merchant_diversity_change``: debits without a ``merchant_id`` are not a merchant
  (like SQL ``COUNT(DISTINCT)``, nulls are not counted).
* R7 means over an empty set (mean debit, mean ATM amount, mean days late, ...) are NaN, and a
  difference or ratio involving a NaN is NaN.
* R8 ``prof_account_age_days`` is fractional and negative for an observation before
  ``created_at``; ``act_inactive_days_30`` is then 0 (its day range is empty).
* R9 transaction windows compare full timestamps with ``t - N days`` (midnight), statement
  windows compare dates: ``t - N days <= due_date < t``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

NAN = float("nan")
DAY = timedelta(days=1)

DISCRETIONARY = {"dining", "entertainment", "shopping"}
ESSENTIAL = {"groceries", "utilities", "rent"}

# The feature table of docs/features.md, in its order.
FEATURE_NAMES = (
    "pay_days_late_mean_90",
    "pay_days_late_max_90",
    "pay_days_late_mean_180",
    "pay_days_late_max_180",
    "pay_late_count_180",
    "pay_unpaid_past_due_count",
    "pay_partial_share_180",
    "pay_shortfall_mean_180",
    "pay_lateness_shift",
    "pay_utilisation_latest",
    "pay_utilisation_change",
    "sal_last_delay_days",
    "sal_days_since_last",
    "sal_amount_deviation",
    "sal_missing_months_180",
    "bal_net_flow_7",
    "bal_net_flow_14",
    "bal_net_flow_30",
    "bal_net_flow_30_vs_baseline",
    "bal_drawdown_90",
    "spend_total_7",
    "spend_total_30",
    "spend_total_7_vs_baseline",
    "spend_total_30_vs_baseline",
    "spend_discretionary_7",
    "spend_discretionary_30",
    "spend_discretionary_30_vs_baseline",
    "spend_essential_7",
    "spend_essential_30",
    "spend_essential_30_vs_baseline",
    "spend_merchant_diversity_change",
    "spend_avg_ticket_change",
    "spend_weekend_share_change",
    "cash_atm_count_30",
    "cash_atm_count_change",
    "cash_atm_amount_change",
    "cash_reliance_30",
    "act_txn_count_30",
    "act_txn_count_change",
    "act_inactive_days_30",
    "act_days_since_last_txn",
    "prof_account_age_days",
    "prof_monthly_income",
    "prof_credit_limit",
)


OUTPUT_SCHEMA = {
    "customer_id": pl.String,
    "observation_date": pl.Date,
    **{name: pl.Float64 for name in FEATURE_NAMES},
}

# ---------------------------------------------------------------------------------------------
# small helpers


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_float(value: Any) -> float:
    return NAN if is_missing(value) else float(value)


def ratio(numerator: float, denominator: float) -> float:
    """NaN when the denominator is 0 or missing (or the numerator missing)."""
    if is_missing(numerator) or is_missing(denominator) or denominator == 0:
        return NAN
    return numerator / denominator


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else NAN  # R7


def maximum(values: list[float]) -> float:
    return max(values) if values else NAN


def days_between(earlier: datetime, later: datetime) -> float:
    """Fractional days from ``earlier`` to ``later``."""
    return (later - earlier) / DAY


def in_window(time: datetime, start: datetime, end: datetime) -> bool:
    """Half-open ``[start, end)``."""
    return start <= time < end


# ---------------------------------------------------------------------------------------------
# payments


def statement_status(statement: dict, t: datetime) -> dict:
    """Payment status at t of a statement with ``due_date < t`` (section "Payment status")."""
    t_date = t.date()
    due = statement["due_date"]
    paid_date = statement["paid_date"]
    paid_at_t = paid_date is not None and paid_date < t_date
    if paid_at_t:  # noqa: SIM108 (the two cases of the spec, side by side)
        days_late = max(0, (paid_date - due).days)
    else:
        days_late = (t_date - due).days  # its lateness runs to t
    amount_due = statement["amount_due"]
    amount_paid = 0.0 if is_missing(statement["amount_paid"]) else statement["amount_paid"]
    # R2: an empty amount_paid on a paid statement counts as 0
    partial = paid_at_t and amount_paid < amount_due
    if amount_due == 0:
        shortfall = None  # left out of the shortfall mean
    else:
        paid = amount_paid if paid_at_t else 0.0  # R1
        shortfall = (amount_due - paid) / amount_due
    return {
        "due_date": due,
        "paid_at_t": paid_at_t,
        "days_late": float(days_late),
        "late": days_late > 0,
        "partial": partial,
        "shortfall": shortfall,
        "amount_due": amount_due,
    }


def utilisation(status: dict, credit_limit: float) -> float:
    if is_missing(credit_limit) or credit_limit <= 0:
        return NAN
    return status["amount_due"] / credit_limit


def due_in(status: dict, t: datetime, start_days: int, end_days: int = 0) -> bool:
    """``t - start_days <= due_date < t - end_days`` (dates)."""
    t_date = t.date()
    return (
        t_date - timedelta(days=start_days)
        <= status["due_date"]
        < t_date - timedelta(days=end_days)
    )


def payment_features(t: datetime, customer: dict, payments: list[dict]) -> dict[str, float]:
    statements = [statement_status(p, t) for p in payments if p["due_date"] < t.date()]
    names = [n for n in FEATURE_NAMES if n.startswith("pay_")]
    if not statements:
        return {name: NAN for name in names}

    last_90 = [s for s in statements if due_in(s, t, 90)]
    last_180 = [s for s in statements if due_in(s, t, 180)]
    last_60 = [s for s in statements if due_in(s, t, 60)]
    days_61_180 = [s for s in statements if due_in(s, t, 180, 60)]

    limit = customer["credit_limit"]
    latest_due = max(s["due_date"] for s in statements)
    latest_util = mean(  # R3: ties on the latest due date -> mean
        [utilisation(s, limit) for s in statements if s["due_date"] == latest_due]
    )
    older_util = mean([utilisation(s, limit) for s in days_61_180])

    return {
        "pay_days_late_mean_90": mean([s["days_late"] for s in last_90]),
        "pay_days_late_max_90": maximum([s["days_late"] for s in last_90]),
        "pay_days_late_mean_180": mean([s["days_late"] for s in last_180]),
        "pay_days_late_max_180": maximum([s["days_late"] for s in last_180]),
        "pay_late_count_180": float(sum(1 for s in last_180 if s["late"])),
        "pay_unpaid_past_due_count": float(sum(1 for s in statements if not s["paid_at_t"])),
        "pay_partial_share_180": ratio(
            float(sum(1 for s in last_180 if s["partial"])), float(len(last_180))
        ),
        "pay_shortfall_mean_180": mean(
            [s["shortfall"] for s in last_180 if s["shortfall"] is not None]
        ),
        "pay_lateness_shift": mean([s["days_late"] for s in last_60])
        - mean([s["days_late"] for s in days_61_180]),
        "pay_utilisation_latest": latest_util,
        "pay_utilisation_change": latest_util - older_util,
    }


# ---------------------------------------------------------------------------------------------
# transactions: helpers shared by the transaction families


def window(transactions: list[dict], t: datetime, start_days: int, end_days: int = 0) -> list:
    """Transactions with ``t - start_days <= txn_time < t - end_days`` (R9)."""
    start, end = t - timedelta(days=start_days), t - timedelta(days=end_days)
    return [x for x in transactions if in_window(x["txn_time"], start, end)]


def last_n(transactions: list[dict], t: datetime, n: int) -> list[dict]:
    return window(transactions, t, n)


def baseline(transactions: list[dict], t: datetime) -> list[dict]:
    """``[t - 120 days, t - 30 days)``."""
    return window(transactions, t, 120, 30)


def debits(transactions: Iterable[dict]) -> list[dict]:
    return [x for x in transactions if x["txn_type"] == "debit"]


def credits(transactions: Iterable[dict]) -> list[dict]:
    return [x for x in transactions if x["txn_type"] == "credit"]


def total(transactions: Iterable[dict]) -> float:
    return float(sum(x["amount"] for x in transactions))


def is_atm(transaction: dict) -> bool:
    return transaction["txn_type"] == "debit" and (
        transaction["channel"] == "atm" or transaction["category"] == "cash"
    )


def is_salary(transaction: dict) -> bool:
    return transaction["txn_type"] == "credit" and transaction["category"] == "salary"


# ---------------------------------------------------------------------------------------------
# salary


def salary_features(t: datetime, customer: dict, transactions: list[dict]) -> dict[str, float]:
    salaries = sorted((x for x in transactions if is_salary(x)), key=lambda x: x["txn_time"])

    if salaries:
        last = salaries[-1]
        salary_day = customer["salary_day"]
        if is_missing(salary_day):
            last_delay = NAN
        else:
            # Python's % is the floored modulo the spec's `mod` means: result in -15..14
            last_delay = float(((last["txn_time"].day - salary_day + 15) % 30) - 15)
        days_since = days_between(last["txn_time"], t)
    else:
        last_delay = days_since = NAN

    # R4: the last salary credit before t; the reference is monthly_income when given, else
    # the mean of the *other* salary credits of the last 180 days
    recent = [x for x in salaries if in_window(x["txn_time"], t - timedelta(days=180), t)]
    if salaries:
        last = salaries[-1]
        income = customer["monthly_income"]
        if is_missing(income):
            others = [x["amount"] for x in recent if x is not last]
            reference = mean(others)
        else:
            reference = float(income)
        deviation = ratio(last["amount"], reference) - 1
    else:
        deviation = NAN

    # R5: no salary credit -> NaN
    missing_months = NAN
    if salaries:
        missing_months = 0
        first_time = salaries[0]["txn_time"]
        for k in range(1, 7):
            start, end = t - timedelta(days=30 * k), t - timedelta(days=30 * (k - 1))
            contains_salary = any(in_window(x["txn_time"], start, end) for x in salaries)
            if start >= first_time and not contains_salary:
                missing_months += 1

    return {
        "sal_last_delay_days": last_delay,
        "sal_days_since_last": days_since,
        "sal_amount_deviation": deviation,
        "sal_missing_months_180": float(missing_months),
    }


# ---------------------------------------------------------------------------------------------
# balance


def net_flow(transactions: list[dict]) -> float:
    return total(credits(transactions)) - total(debits(transactions))


def balance_features(t: datetime, transactions: list[dict]) -> dict[str, float]:
    flow_30 = net_flow(last_n(transactions, t, 30))
    last_90 = last_n(transactions, t, 90)
    credits_90, debits_90 = total(credits(last_90)), total(debits(last_90))
    return {
        "bal_net_flow_7": net_flow(last_n(transactions, t, 7)),
        "bal_net_flow_14": net_flow(last_n(transactions, t, 14)),
        "bal_net_flow_30": flow_30,
        "bal_net_flow_30_vs_baseline": flow_30 - net_flow(baseline(transactions, t)) / 3,
        "bal_drawdown_90": ratio(debits_90 - credits_90, credits_90),
    }


# ---------------------------------------------------------------------------------------------
# spending


def distinct_merchants(transactions: list[dict]) -> int:
    # R6: a debit without merchant_id is no merchant
    return len({x["merchant_id"] for x in transactions if x["merchant_id"] is not None})


def weekend_share(debit_rows: list[dict]) -> float:
    weekend = total(x for x in debit_rows if x["txn_time"].weekday() >= 5)  # Sat=5, Sun=6
    return ratio(weekend, total(debit_rows))


def spending_features(t: datetime, transactions: list[dict]) -> dict[str, float]:
    d7 = debits(last_n(transactions, t, 7))
    d30 = debits(last_n(transactions, t, 30))
    base = debits(baseline(transactions, t))

    def discretionary(rows: list[dict]) -> float:
        return total(x for x in rows if x["category"] in DISCRETIONARY)

    def essential(rows: list[dict]) -> float:
        return total(x for x in rows if x["category"] in ESSENTIAL)

    base_periods = [debits(window(transactions, t, 30 * k + 30, 30 * k)) for k in (1, 2, 3)]
    mean_base_merchants = sum(distinct_merchants(p) for p in base_periods) / 3

    return {
        "spend_total_7": total(d7),
        "spend_total_30": total(d30),
        "spend_total_7_vs_baseline": ratio(total(d7), total(base) * 7 / 90),
        "spend_total_30_vs_baseline": ratio(total(d30), total(base) / 3),
        "spend_discretionary_7": discretionary(d7),
        "spend_discretionary_30": discretionary(d30),
        "spend_discretionary_30_vs_baseline": ratio(discretionary(d30), discretionary(base) / 3),
        "spend_essential_7": essential(d7),
        "spend_essential_30": essential(d30),
        "spend_essential_30_vs_baseline": ratio(essential(d30), essential(base) / 3),
        "spend_merchant_diversity_change": ratio(
            float(distinct_merchants(d30)), mean_base_merchants
        ),
        "spend_avg_ticket_change": ratio(
            mean([x["amount"] for x in d30]), mean([x["amount"] for x in base])
        ),
        "spend_weekend_share_change": weekend_share(d30) - weekend_share(base),
    }


# ---------------------------------------------------------------------------------------------
# cash


def cash_features(t: datetime, transactions: list[dict]) -> dict[str, float]:
    last_30 = last_n(transactions, t, 30)
    atm_30 = [x for x in last_30 if is_atm(x)]
    atm_base = [x for x in baseline(transactions, t) if is_atm(x)]
    return {
        "cash_atm_count_30": float(len(atm_30)),
        "cash_atm_count_change": len(atm_30) - len(atm_base) / 3,
        "cash_atm_amount_change": ratio(
            mean([x["amount"] for x in atm_30]), mean([x["amount"] for x in atm_base])
        ),
        "cash_reliance_30": ratio(total(atm_30), total(debits(last_30))),
    }


# ---------------------------------------------------------------------------------------------
# activity


def activity_features(t: datetime, customer: dict, transactions: list[dict]) -> dict[str, float]:
    last_30 = last_n(transactions, t, 30)
    base = baseline(transactions, t)

    # UTC calendar days d of [max(t - 30 days, first day of created_at), t)
    t_date = t.date()
    first_day = max(t_date - timedelta(days=30), customer["created_at"].date())
    active_days = {x["txn_time"].date() for x in transactions}
    inactive = 0
    day = first_day
    while day < t_date:
        if day not in active_days:
            inactive += 1
        day += timedelta(days=1)

    last_time = max(x["txn_time"] for x in transactions)
    return {
        "act_txn_count_30": float(len(last_30)),
        "act_txn_count_change": ratio(float(len(last_30)), len(base) / 3),
        "act_inactive_days_30": float(inactive),
        "act_days_since_last_txn": days_between(last_time, t),
    }


# ---------------------------------------------------------------------------------------------
# profile


def profile_features(t: datetime, customer: dict) -> dict[str, float]:
    return {
        "prof_account_age_days": days_between(customer["created_at"], t),  # R8: may be < 0
        "prof_monthly_income": as_float(customer["monthly_income"]),
        "prof_credit_limit": as_float(customer["credit_limit"]),
    }


# ---------------------------------------------------------------------------------------------
# one observation


TRANSACTION_FAMILIES = ("sal_", "bal_", "spend_", "cash_", "act_")


def reference_features(
    observation: tuple[str, date],
    customer: dict,
    transactions: list[dict],
    payments: list[dict],
) -> dict[str, float]:
    """Every feature for one ``(customer_id, observation_date)`` from that customer's rows."""
    customer_id, observation_date = observation
    t = datetime(observation_date.year, observation_date.month, observation_date.day)
    assert customer["customer_id"] == customer_id
    assert all(x["customer_id"] == customer_id for x in transactions)
    assert all(p["customer_id"] == customer_id for p in payments)

    visible = [x for x in transactions if x["txn_time"] < t]  # strictly before t
    out: dict[str, float] = {}
    out.update(payment_features(t, customer, payments))
    if visible:
        out.update(salary_features(t, customer, visible))
        out.update(balance_features(t, visible))
        out.update(spending_features(t, visible))
        out.update(cash_features(t, visible))
        out.update(activity_features(t, customer, visible))
    else:  # no transaction before t: every transaction-based feature is missing
        out.update({n: NAN for n in FEATURE_NAMES if n.startswith(TRANSACTION_FAMILIES)})
    out.update(profile_features(t, customer))

    assert set(out) == set(FEATURE_NAMES), set(out) ^ set(FEATURE_NAMES)
    return {name: float(out[name]) for name in FEATURE_NAMES}


# ---------------------------------------------------------------------------------------------
# a whole frame, laid out like the fast path


def reference_frame(
    observations: pl.DataFrame,
    customers: pl.DataFrame,
    transactions: pl.DataFrame,
    payments: pl.DataFrame,
) -> pl.DataFrame:
    """One row per observation, in order: ``customer_id, observation_date``, every feature."""
    customer_rows = {c["customer_id"]: c for c in customers.to_dicts()}
    txns_by_customer: dict[str, list[dict]] = defaultdict(list)
    for row in transactions.to_dicts():
        txns_by_customer[row["customer_id"]].append(row)
    payments_by_customer: dict[str, list[dict]] = defaultdict(list)
    for row in payments.to_dicts():
        payments_by_customer[row["customer_id"]].append(row)

    rows = []
    for obs in observations.select("customer_id", "observation_date").iter_rows():
        customer_id, observation_date = obs
        values = reference_features(
            (customer_id, observation_date),
            customer_rows[customer_id],
            txns_by_customer[customer_id],
            payments_by_customer[customer_id],
        )
        rows.append({"customer_id": customer_id, "observation_date": observation_date, **values})

    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA)


# ---------------------------------------------------------------------------------------------
# test helpers: input frames, small factories, NaN-aware comparison

CUSTOMER_SCHEMA = {
    "customer_id": pl.String,
    "created_at": pl.Datetime("us"),
    "monthly_income": pl.Float64,
    "salary_day": pl.Int64,
    "credit_limit": pl.Float64,
}
TRANSACTION_SCHEMA = {
    "customer_id": pl.String,
    "txn_time": pl.Datetime("us"),
    "amount": pl.Float64,
    "txn_type": pl.String,
    "category": pl.String,
    "merchant_id": pl.String,
    "channel": pl.String,
}
PAYMENT_SCHEMA = {
    "customer_id": pl.String,
    "due_date": pl.Date,
    "amount_due": pl.Float64,
    "amount_paid": pl.Float64,
    "paid_date": pl.Date,
}
OBSERVATION_SCHEMA = {"customer_id": pl.String, "observation_date": pl.Date}


def frames(
    customers: list[dict],
    transactions: list[dict],
    payments: list[dict],
    observations: list[tuple[str, date]],
) -> dict[str, pl.DataFrame]:
    """Rows as dicts -> the four typed input frames."""
    return {
        "observations": pl.DataFrame(
            [{"customer_id": c, "observation_date": d} for c, d in observations],
            schema=OBSERVATION_SCHEMA,
        ),
        "customers": pl.DataFrame(customers, schema=CUSTOMER_SCHEMA),
        "transactions": pl.DataFrame(transactions, schema=TRANSACTION_SCHEMA),
        "payments": pl.DataFrame(payments, schema=PAYMENT_SCHEMA),
    }


def synthetic_frames(n_customers: int, seed: int) -> dict[str, pl.DataFrame]:
    """``predelinq.synth.generate`` cast to the input contract (observations = its labels)."""
    from predelinq.synth import generate

    data = generate(n_customers=n_customers, seed=seed)
    return {
        "observations": data.labels.select(
            [pl.col(k).cast(v) for k, v in OBSERVATION_SCHEMA.items()]
        ),
        "customers": data.customers.select([pl.col(k).cast(v) for k, v in CUSTOMER_SCHEMA.items()]),
        "transactions": data.transactions.select(
            [pl.col(k).cast(v) for k, v in TRANSACTION_SCHEMA.items()]
        ),
        "payments": data.payments.select([pl.col(k).cast(v) for k, v in PAYMENT_SCHEMA.items()]),
    }


def customer(
    customer_id: str,
    *,
    created_at: datetime = datetime(2023, 1, 1),
    monthly_income: float | None = 3000.0,
    salary_day: int | None = 25,
    credit_limit: float | None = 5000.0,
) -> dict:
    return {
        "customer_id": customer_id,
        "created_at": created_at,
        "monthly_income": monthly_income,
        "salary_day": salary_day,
        "credit_limit": credit_limit,
    }


def txn(
    customer_id: str,
    txn_time: datetime,
    amount: float = 10.0,
    txn_type: str = "debit",
    category: str = "groceries",
    merchant_id: str | None = "M1",
    channel: str | None = "card",
) -> dict:
    return {
        "customer_id": customer_id,
        "txn_time": txn_time,
        "amount": amount,
        "txn_type": txn_type,
        "category": category,
        "merchant_id": merchant_id,
        "channel": channel,
    }


def salary(customer_id: str, txn_time: datetime, amount: float = 3000.0) -> dict:
    return txn(customer_id, txn_time, amount, "credit", "salary", None, "transfer")


def statement(
    customer_id: str,
    due_date: date,
    amount_due: float = 100.0,
    paid_date: date | None = None,
    amount_paid: float | None = None,
) -> dict:
    """An unpaid statement, or paid on ``paid_date`` (in full unless ``amount_paid``)."""
    if paid_date is not None and amount_paid is None:
        amount_paid = amount_due
    return {
        "customer_id": customer_id,
        "due_date": due_date,
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "paid_date": paid_date,
    }


def fast_frame(inputs: dict[str, pl.DataFrame]) -> pl.DataFrame:
    from predelinq.features import features_from_frames

    return features_from_frames(
        inputs["observations"],
        customers=inputs["customers"],
        transactions=inputs["transactions"],
        payments=inputs["payments"],
    )


def at_date_frame(inputs: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The scoring path (``features_at_date``), one call per observation date, rows put back
    in the observations' order."""
    from predelinq.features.at_date import features_at_date

    observations = inputs["observations"].with_row_index("row")
    events = {name: inputs[name] for name in ("customers", "transactions", "payments")}
    parts = [
        features_at_date(group["customer_id"].to_list(), day, events).with_columns(row=group["row"])
        for (day,), group in observations.group_by("observation_date")
    ]
    return pl.concat(parts).sort("row").drop("row")


FAST_PATHS = {"duckdb": fast_frame, "at_date": at_date_frame}


def reference_from(inputs: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return reference_frame(
        inputs["observations"], inputs["customers"], inputs["transactions"], inputs["payments"]
    )


def feature_mismatches(
    expected: pl.DataFrame,
    got: pl.DataFrame,
    names: Iterable[str] = FEATURE_NAMES,
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> list[str]:
    """Human-readable disagreements (feature, observation, expected, got); NaN equals NaN.

    The tolerance test is numpy's ``assert_allclose``: ``|got - expected| <= atol +
    rtol * |expected|``, NaN positions equal. A null (instead of NaN) is a disagreement too.
    """
    import numpy as np

    assert got.height == expected.height, (expected.height, got.height)
    keys = list(zip(expected["customer_id"], expected["observation_date"], strict=True))
    out = []
    for name in names:
        if got[name].null_count():
            out.append(f"{name}: {got[name].null_count()} null values (missing must be NaN)")
        e = expected[name].to_numpy().astype(float)
        g = got[name].fill_null(float("nan")).to_numpy().astype(float)
        both_nan = np.isnan(e) & np.isnan(g)
        with np.errstate(invalid="ignore"):
            close = np.abs(g - e) <= atol + rtol * np.abs(e)
            close |= e == g  # equal infinities
        bad = np.flatnonzero(~(close | both_nan))
        for i in bad[:10]:
            where = f"{keys[i][0]} {keys[i][1]}"
            out.append(f"{name} at {where}: expected {float(e[i])!r}, got {float(g[i])!r}")
        if len(bad) > 10:
            out.append(f"{name}: ... {len(bad)} disagreements in all")
    return out


def assert_features_equal(expected: pl.DataFrame, got: pl.DataFrame, names=FEATURE_NAMES):
    mismatches = feature_mismatches(expected, got, names)
    assert not mismatches, "features disagree:\n" + "\n".join(mismatches)
