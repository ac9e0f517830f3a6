"""Point in time: nothing on or after t changes a feature for t; something just before t does.

Hypothesis draws small histories (one or two customers, a handful of transactions and
statements around the observation dates) and runs both fast paths: ``features_from_frames``
(training) and ``features_at_date`` (scoring).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reference_features import (
    FAST_PATHS,
    feature_mismatches,
    frames,
    reference_from,
    statement,
    txn,
)

OBS = date(2024, 7, 1)
T = datetime(2024, 7, 1)
CUSTOMERS = ("A", "B")
# observations: both customers at t, and customer A 45 days earlier
OBSERVATIONS = [("A", OBS), ("B", OBS), ("A", OBS - timedelta(days=45))]
CATEGORIES = ("salary", "rent", "utilities", "groceries", "dining", "entertainment",
              "shopping", "transfer", "cash")  # fmt: skip
EDGES = [timedelta(days=d) for d in (7, 14, 30, 45, 60, 90, 120, 180)]

# --- strategies ------------------------------------------------------------------------------

amounts = st.integers(1, 100_000).map(lambda cents: cents / 100)
past_offsets = st.one_of(  # how long before t
    st.integers(1, 200 * 86_400).map(lambda s: timedelta(seconds=s)),
    st.sampled_from([timedelta(microseconds=1), *EDGES]),
)
future_offsets = st.one_of(  # how long after t (0 = exactly t)
    st.just(timedelta(0)),
    st.integers(0, 60 * 86_400).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def customers(draw, customer_id):
    return {
        "customer_id": customer_id,
        "created_at": T - draw(st.sampled_from([timedelta(days=400), timedelta(days=50),
                                               timedelta(days=10), timedelta(days=-3)])),
        "monthly_income": draw(st.sampled_from([None, 0.0, 2500.0, 3000.0])),
        "salary_day": draw(st.sampled_from([None, 1, 15, 28])),
        "credit_limit": draw(st.sampled_from([None, 0.0, 5000.0])),
    }  # fmt: skip


@st.composite
def transactions(draw, when):
    return txn(
        draw(st.sampled_from(CUSTOMERS)),
        draw(when),
        draw(amounts),
        draw(st.sampled_from(["debit", "credit"])),
        draw(st.sampled_from(CATEGORIES)),
        draw(st.sampled_from([None, "M1", "M2", "M3"])),
        draw(st.sampled_from([None, "card", "atm", "transfer"])),
    )


@st.composite
def statements(draw, due_offset_days):
    due = OBS + timedelta(days=draw(due_offset_days))
    paid = draw(st.one_of(st.none(), st.integers(-5, 60)))
    amount_due = draw(st.sampled_from([0.0, 50.0, 120.5, 300.0]))
    if paid is None:
        return statement(draw(st.sampled_from(CUSTOMERS)), due, amount_due)
    amount_paid = draw(st.one_of(st.none(), st.sampled_from([0.0, 20.0, amount_due])))
    return statement(
        draw(st.sampled_from(CUSTOMERS)), due, amount_due, due + timedelta(days=paid), amount_paid
    )


@st.composite
def histories(draw):
    return {
        "customers": [draw(customers(c)) for c in CUSTOMERS],
        "transactions": draw(
            st.lists(transactions(past_offsets.map(lambda d: T - d)), max_size=12)
        ),
        "payments": draw(st.lists(statements(st.integers(-200, -1)), max_size=6)),
    }


def run(history: dict, path: str = "duckdb") -> pl.DataFrame:
    return FAST_PATHS[path](
        frames(history["customers"], history["transactions"], history["payments"], OBSERVATIONS)
    )


# --- (a) events on or after t change nothing -------------------------------------------------


@st.composite
def later_payments(draw, payments):
    """Pay some statements that are unpaid (no paid_date) on or after t."""
    out = []
    for p in payments:
        if p["paid_date"] is None and draw(st.booleans()):
            paid = OBS + timedelta(days=draw(st.integers(0, 40)))
            amount = draw(st.sampled_from([p["amount_due"], 10.0]))
            p = {**p, "paid_date": paid, "amount_paid": amount}
        out.append(p)
    return out


@pytest.mark.parametrize("path", FAST_PATHS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_events_on_or_after_t_change_no_feature(path, data):
    history = data.draw(histories())
    future_txns = data.draw(
        st.lists(transactions(future_offsets.map(lambda d: T + d)), min_size=1, max_size=6)
    )
    future_statements = data.draw(st.lists(statements(st.integers(0, 60)), max_size=4))
    later = {
        "customers": history["customers"],
        "transactions": history["transactions"] + future_txns,
        "payments": data.draw(later_payments(history["payments"])) + future_statements,
    }
    before, after = run(history, path), run(later, path)
    mismatches = feature_mismatches(before, after)
    assert not mismatches, "future events changed features:\n" + "\n".join(mismatches)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_reference_ignores_events_on_or_after_t_too(data):
    history = data.draw(histories())
    later = {
        **history,
        "transactions": history["transactions"]
        + data.draw(st.lists(transactions(future_offsets.map(lambda d: T + d)), max_size=6)),
        "payments": data.draw(later_payments(history["payments"]))
        + data.draw(st.lists(statements(st.integers(0, 60)), max_size=4)),
    }

    def reference(h):
        return reference_from(
            frames(h["customers"], h["transactions"], h["payments"], OBSERVATIONS)
        )

    assert not feature_mismatches(reference(history), reference(later))


# --- (b) events just before t do change features ---------------------------------------------


def value(frame: pl.DataFrame, name: str, row: int = 0) -> float:
    return frame[name][row]  # row 0 is ("A", t)


def or_zero(x: float) -> float:
    return 0.0 if math.isnan(x) else x


@pytest.mark.parametrize("path", FAST_PATHS)
@settings(max_examples=30, deadline=None)
@given(history=histories(), amount=amounts)
def test_a_debit_one_second_before_t_counts(path, history, amount):
    # a transaction already inside the last second would stay the latest one
    assume(
        not any(
            x["customer_id"] == "A" and x["txn_time"] >= T - timedelta(seconds=1)
            for x in history["transactions"]
        )
    )
    debit = txn("A", T - timedelta(seconds=1), amount, "debit", "dining", "M9", "card")
    before = run(history, path)
    after = run({**history, "transactions": history["transactions"] + [debit]}, path)

    assert math.isclose(
        value(after, "spend_total_7"), or_zero(value(before, "spend_total_7")) + amount,
        rel_tol=1e-9, abs_tol=1e-9,
    )  # fmt: skip
    assert value(after, "act_txn_count_30") == or_zero(value(before, "act_txn_count_30")) + 1
    assert math.isclose(value(after, "act_days_since_last_txn"), 1 / 86_400, rel_tol=1e-9)
    assert value(after, "act_days_since_last_txn") != value(before, "act_days_since_last_txn")


@pytest.mark.parametrize("path", FAST_PATHS)
@settings(max_examples=30, deadline=None)
@given(history=histories(), amount_due=st.sampled_from([50.0, 300.0]))
def test_an_unpaid_statement_due_the_day_before_t_counts(path, history, amount_due):
    due = statement("A", OBS - timedelta(days=1), amount_due)
    before = run(history, path)
    after = run({**history, "payments": history["payments"] + [due]}, path)
    name = "pay_unpaid_past_due_count"
    assert value(after, name) == or_zero(value(before, name)) + 1
