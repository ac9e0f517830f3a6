"""How fresh a customer's data is at a date: the newest event the features could use.

A score computed months after a customer's last transaction describes the customer as they
were then, and on data that stopped arriving nearly every customer looks alike. Every score
therefore carries ``last_event_at`` (the newest transaction, payment due date or payment
before the date, of payments already due) and ``data_age_days`` (whole days from it to the date).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl

from predelinq.features.declarations import DAY_US
from predelinq.features.events import Events, Rows


def newest_event_us(events: Events, t: int) -> np.ndarray:
    """Per customer, microseconds since the epoch of the newest event before ``t`` (also in
    microseconds); NaN for a customer without any."""
    newest = np.full(events.n, -np.inf)
    _latest_before(events.transactions, t, newest)
    _latest_before(events.payments, t, newest)
    paid = events.payments.numbers["paid_day"] * DAY_US
    # the features see a payment once it is due: one paid early for a later due date is not
    # used yet, so it does not make the data look fresher
    known = np.isfinite(paid) & (paid < t) & (events.payments.time < t)
    np.maximum.at(newest, events.payments.c[known], paid[known])
    newest[np.isinf(newest)] = np.nan
    return newest


def _latest_before(rows: Rows, t: int, newest: np.ndarray) -> None:
    """Rows are sorted by (customer, time): each customer's last row before ``t`` is its
    newest."""
    before = rows.time < t
    c, time = rows.c[before], rows.time[before]
    if c.size == 0:
        return
    last = np.flatnonzero(np.diff(c, append=c[-1] + 1) != 0)
    np.maximum.at(newest, c[last], time[last].astype(float))


def freshness_columns(newest_us: np.ndarray, as_of: date) -> list[pl.Series]:
    """``last_event_at`` (a datetime, null without events) and ``data_age_days`` (whole days
    from it to ``as_of``, null without events)."""
    t = np.datetime64(datetime.combine(as_of, datetime.min.time()), "us").astype(np.int64)
    known = np.isfinite(newest_us)
    at = np.where(known, newest_us, 0).astype(np.int64)
    age = (t - at) // DAY_US
    return [
        pl.Series("last_event_at", at, dtype=pl.Int64)
        .cast(pl.Datetime("us"))
        .scatter(np.flatnonzero(~known), None),
        pl.Series("data_age_days", age, dtype=pl.Int64).scatter(np.flatnonzero(~known), None),
    ]
