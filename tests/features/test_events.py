"""The NumPy path for a few customers (a /predict micro-batch) gives the same running balance
and income flags as the polars path, bit for bit, on any rows."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from predelinq.features.declarations import DAY_US
from predelinq.features.events import _starts
from predelinq.features.running import balances, income_flags, small_balances, small_income_flags

AMOUNTS = st.sampled_from([0.0, 1.0, 10.0, 13.33, 7.5, 100.0, 75.0, 1e9, float("nan")])
BALANCES = st.one_of(st.just(float("nan")), st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def transactions(draw) -> tuple[pl.DataFrame, np.ndarray]:
    customers = draw(st.integers(1, 5))
    size = draw(st.integers(0, 40))
    c = np.sort(
        np.array(
            draw(st.lists(st.integers(0, customers - 1), min_size=size, max_size=size)),
            dtype=np.int64,
        )
    )
    days = draw(st.lists(st.integers(0, 200), min_size=size, max_size=size))
    time = np.array(days, dtype=np.int64) * DAY_US
    time = time[np.lexsort((time, c))] if size else time
    amount = np.array(draw(st.lists(AMOUNTS, min_size=size, max_size=size)), dtype=float)
    credit = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool)
    flow = np.where(credit, amount, -amount)
    frame = pl.DataFrame(
        {
            "c": c,
            "time": time,
            "flow": flow,
            "amount": amount,
            "credit": credit,
            "balance_after": np.array(
                draw(st.lists(BALANCES, min_size=size, max_size=size)), dtype=float
            ),
            "counterparty": np.array(
                draw(st.lists(st.integers(-3, 2), min_size=size, max_size=size)), dtype=np.int64
            ),
            "salary": np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))),
            "not_income": np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))),
        },
        schema_overrides={"salary": pl.Boolean, "not_income": pl.Boolean},
    )
    return frame, _starts(c, customers)


@settings(max_examples=300, deadline=None)
@given(transactions())
def test_numpy_and_polars_paths_agree(case):
    frame, starts = case
    assert np.array_equal(small_balances(frame, starts), balances(frame), equal_nan=True)
    assert np.array_equal(small_income_flags(frame), income_flags(frame))


def test_a_monthly_salary_like_credit_is_income_on_both_paths():
    frame = pl.DataFrame(
        {
            "c": [0, 0, 0],
            "time": np.array([0, 30, 61], dtype=np.int64) * DAY_US,
            "flow": [1000.0, 1000.0, 1010.0],
            "amount": [1000.0, 1000.0, 1010.0],
            "credit": [True, True, True],
            "balance_after": [float("nan")] * 3,
            "counterparty": [7, 7, 7],
            "salary": [False] * 3,
            "not_income": [False] * 3,
        }
    )
    assert small_income_flags(frame).tolist() == income_flags(frame).tolist() == [False, True, True]
