"""Running row fields: a transaction's balance after it, and whether a credit is income.

Each comes from the same customer's earlier rows only, so it is point in time by
construction. Two implementations of each give the same bits (tests/features/test_events.py):
polars for many customers, NumPy for a few (a ``/predict`` micro-batch)."""

from __future__ import annotations

import numpy as np
import polars as pl

from predelinq.features.declarations import DAY_US

# Income detection: a credit is recurring income when one of the same customer's
# RECURRING_LOOKBACK previous credits from the same counterparty (merchant_id; else the same
# category) came RECURRING_DAYS days before it, of an amount within RECURRING_AMOUNT of this
# one. Credits of declarations.NOT_INCOME_CATEGORIES never count as income.
RECURRING_LOOKBACK = 3
RECURRING_DAYS = (20, 40)
RECURRING_AMOUNT = (0.75 * (1 - 1e-9), 1 / 0.75 * (1 + 1e-9))  # bounds included despite rounding


def balances(frame: pl.DataFrame) -> np.ndarray:
    """``balance_after`` where given; else the last given balance of the customer plus the net
    flows since; before any given balance, the running sum of net flows."""
    result = frame.select(
        running=pl.col("flow").cum_sum().over("c"),
    ).with_columns(given=frame["balance_after"].fill_nan(None))
    anchor = (
        (result["given"] - result["running"])
        .to_frame("anchor")
        .with_columns(c=frame["c"])
        .select(pl.col("anchor").forward_fill().over("c").fill_null(0.0))
    )["anchor"]
    balance = result["given"].fill_null(result["running"] + anchor)
    return balance.to_numpy().astype(float)


# Up to this many customers (a /predict micro-batch) the running balance and the income flag
# are computed in NumPy: each polars window query has a fixed cost of about a millisecond,
# most of a small batch's time. Both ways give the same bits (tests/features/test_events.py).
SMALL_CUSTOMERS = 256


def small_balances(frame: pl.DataFrame, starts: np.ndarray) -> np.ndarray:
    """``balance`` for a few customers, in NumPy."""
    flow = frame["flow"].to_numpy()
    given = frame["balance_after"].to_numpy()
    running = np.empty_like(flow)
    for first, stop in zip(starts[:-1], starts[1:], strict=True):  # per customer, not row
        running[first:stop] = np.cumsum(flow[first:stop])
    known = ~np.isnan(given)
    n = len(flow)
    customer_start = np.repeat(starts[:-1], np.diff(starts))
    last_known = np.maximum.accumulate(np.where(known, np.arange(n), -1))
    has_anchor = last_known >= customer_start
    anchor = np.where(has_anchor, (given - running)[np.where(has_anchor, last_known, 0)], 0.0)
    return np.where(known, given, running + anchor).astype(float)


def small_income_flags(frame: pl.DataFrame) -> np.ndarray:
    """``income`` for a few customers, in NumPy."""
    low, high = RECURRING_DAYS
    ratio_low, ratio_high = RECURRING_AMOUNT
    rows = np.flatnonzero(frame["credit"].to_numpy())
    c, counterparty = frame["c"].to_numpy()[rows], frame["counterparty"].to_numpy()[rows]
    # each (customer, counterparty)'s credits together, in their order
    grouped = np.lexsort((np.arange(len(rows)), counterparty, c))
    order = rows[grouped]
    c, counterparty = c[grouped], counterparty[grouped]
    time, amount = frame["time"].to_numpy()[order], frame["amount"].to_numpy()[order]
    recurring = np.zeros(len(order), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for back in range(1, RECURRING_LOOKBACK + 1):
            if back >= len(order):
                break
            same = (c[back:] == c[:-back]) & (counterparty[back:] == counterparty[:-back])
            gap = (time[back:] - time[:-back]) / DAY_US
            ratio = amount[back:] / amount[:-back]
            recurring[back:] |= (
                same & (gap >= low) & (gap <= high) & (ratio >= ratio_low) & (ratio <= ratio_high)
            )
    income = np.zeros(frame.height, dtype=bool)
    salary = frame["salary"].to_numpy()[order]
    not_income = frame["not_income"].to_numpy()[order]
    income[order] = salary | (recurring & ~not_income)
    return income


def income_flags(frame: pl.DataFrame) -> np.ndarray:
    """Credits that are income: salary, or recurring (see RECURRING_DAYS)."""
    low, high = RECURRING_DAYS
    ratio_low, ratio_high = RECURRING_AMOUNT
    earlier = []
    for back in range(1, RECURRING_LOOKBACK + 1):
        gap = (pl.col("time") - pl.col("time").shift(back).over("c", "counterparty")) / DAY_US
        ratio = pl.col("amount") / pl.col("amount").shift(back).over("c", "counterparty")
        earlier.append(
            (gap.is_between(low, high) & ratio.is_between(ratio_low, ratio_high)).fill_null(False)
        )
    recurring = pl.any_horizontal(earlier) & ~pl.col("not_income")
    credits = (  # filtered first: the shifts see only credits
        frame.with_row_index("row")
        .filter(pl.col("credit"))
        .select("row", income=pl.col("salary") | recurring)
    )
    income = np.zeros(frame.height, dtype=bool)
    income[credits["row"].to_numpy()] = credits["income"].to_numpy()
    return income
