"""The online engine: every declared feature for many customers at one date (scoring, the API).

With one date every window has the same bounds for everyone, so each aggregate is a
reduction of the rows grouped by customer (``np.bincount`` and segment reductions over rows
sorted by customer then time): no query planning, no Python loop over customers or rows.
``grouped_reduce`` is also what the historical engine uses for payments, whose fields
depend on the observation date (grouped there by observation).

The historical engine (``historical.py``) computes the same declarations another way; the
feature tests hold the two, and a plain reference, to the same answer on every feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from predelinq.features.combine import feature_columns
from predelinq.features.declarations import (
    DAY_US,
    PERIOD_AGGS,
    PERIOD_DAYS,
    TIME_WEIGHTED_AGGS,
    Aggregate,
    FeatureSet,
    Source,
    Where,
)
from predelinq.features.events import (
    Customers,
    Events,
    condition_mask,
    payment_fields,
    prepare_events,
)
from predelinq.features.freshness import freshness_columns, newest_event_us

PERIOD_US = PERIOD_DAYS * DAY_US


def features_at_date(
    customer_ids: Sequence[str],
    as_of: date,
    inputs: Mapping[str, pa.Table | pl.DataFrame],
    features: FeatureSet,
    *,
    freshness: bool = False,
) -> pl.DataFrame:
    """Features of each customer at ``as_of``, one row per id in the given order:
    ``customer_id``, ``observation_date``, then every feature (Float64, NaN = missing), and
    with ``freshness`` the data's age: ``last_event_at``, ``data_age_days``."""
    distinct = list(dict.fromkeys(customer_ids))
    matrix, newest = matrix_and_newest_event_at_date(distinct, as_of, inputs, features)
    frame = pl.DataFrame(
        {name: matrix[:, k] for k, name in enumerate(features.names)},
        schema={name: pl.Float64 for name in features.names},
        height=len(distinct),
    )
    frame = frame.insert_column(0, pl.Series("customer_id", distinct, dtype=pl.String))
    frame = frame.insert_column(
        1, pl.Series("observation_date", [as_of] * len(distinct), dtype=pl.Date)
    )
    if freshness:
        frame = frame.with_columns(freshness_columns(newest, as_of))
    if len(distinct) == len(customer_ids):
        return frame
    rows = pl.DataFrame({"customer_id": pl.Series(list(customer_ids), dtype=pl.String)})
    return rows.join(frame, on="customer_id", how="left", maintain_order="left")


def feature_matrix_at_date(
    customer_ids: Sequence[str],
    as_of: date,
    inputs: Mapping[str, pa.Table | pl.DataFrame],
    features: FeatureSet,
) -> np.ndarray:
    """One row per customer id (ids must be distinct), one column per feature: what a model
    takes. Rows on or after ``as_of`` are ignored."""
    return matrix_and_newest_event_at_date(customer_ids, as_of, inputs, features)[0]


def matrix_and_newest_event_at_date(
    customer_ids: Sequence[str],
    as_of: date,
    inputs: Mapping[str, pa.Table | pl.DataFrame],
    features: FeatureSet,
) -> tuple[np.ndarray, np.ndarray]:
    """``feature_matrix_at_date`` and, per customer, the newest event before ``as_of`` in
    microseconds (NaN: none; see :mod:`predelinq.features.freshness`)."""
    n = len(customer_ids)
    if len(set(customer_ids)) != n:
        raise ValueError("customer ids must be distinct")
    events = prepare_events(customer_ids, inputs, features.categories)
    t = int(np.datetime64(as_of, "us").astype(np.int64))
    return matrix_at(events, np.full(n, t, dtype=np.int64), features), newest_event_us(events, t)


def matrix_at(events: Events, t: np.ndarray, features: FeatureSet) -> np.ndarray:
    """Features of customer k at ``t[k]`` (microseconds) for every customer of ``events``."""
    n = events.n
    tx = events.transactions
    before = np.flatnonzero(tx.time < t[tx.c])
    transactions = Groups(tx.c[before], tx.time[before], t, n)
    tx_lookup = tx.fields()
    pay = events.payments
    paid_before = np.flatnonzero(pay.time < t[pay.c])
    payments = Groups(pay.c[paid_before], pay.time[paid_before], t, n)
    pay_lookup = payment_fields(pay, events.customers, paid_before, t[pay.c[paid_before]])
    masks: dict[tuple[Source, Where], np.ndarray] = {}
    # Each value column's rows before t, once: 78 features ask for a few columns many times,
    # and on a /predict micro-batch the fixed cost per aggregate is most of the time.
    tx_values: dict[str, np.ndarray] = {}

    def compute(aggregate: Aggregate) -> np.ndarray:
        if aggregate.source == "customers":
            return customer_values(aggregate, events.customers, np.arange(n), t)
        key = (aggregate.source, aggregate.where)
        if aggregate.source == "transactions":
            if key not in masks:
                masks[key] = condition_mask(aggregate.where, tx.size, tx_lookup)[before]
            rows = None
            if aggregate.value:
                if aggregate.value not in tx_values:
                    tx_values[aggregate.value] = tx.value(aggregate.value)[before].astype(
                        float, copy=False
                    )
                rows = tx_values[aggregate.value]
            return grouped_reduce(aggregate, transactions, masks[key], rows)
        if key not in masks:
            masks[key] = condition_mask(aggregate.where, len(paid_before), pay_lookup)
        value = pay_lookup[aggregate.value] if aggregate.value else None
        return grouped_reduce(aggregate, payments, masks[key], _as_float(value))

    if n == 0:
        return np.empty((0, len(features.names)))
    columns = feature_columns(features, compute)
    return np.column_stack([columns[name] for name in features.names])


def _as_float(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else values.astype(float, copy=False)


def customer_values(
    aggregate: Aggregate, customers: Customers, c: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """A customers feature for customer positions ``c`` at dates ``t`` (microseconds)."""
    values: np.ndarray  # numpy's stubs type arithmetic on untyped arrays as Any
    if aggregate.agg == "days_since_first":
        values = (t - customers.created[c]) / DAY_US
    else:
        assert aggregate.value is not None
        values = customers.numbers[aggregate.value][c]
    return values


@dataclass
class Groups:
    """One source's rows before their group's date, sorted by (group, time). A group is a
    customer (online) or an observation (the historical engine's payments)."""

    g: np.ndarray
    time: np.ndarray  # microseconds
    t: np.ndarray  # per group: the observation date, microseconds
    n: int
    starts: np.ndarray = field(init=False)
    has_rows: np.ndarray = field(init=False)
    first_time: np.ndarray = field(init=False)  # per group; NaN without rows
    first_row: np.ndarray = field(init=False)  # per row: its group's first row
    _windows: dict[tuple[int | None, int], tuple[np.ndarray, np.ndarray]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.starts = np.searchsorted(self.g, np.arange(self.n + 1), side="left")
        self.has_rows = self.starts[1:] > self.starts[:-1]
        first = np.minimum(self.starts[:-1], max(len(self.g) - 1, 0))
        self.first_time = np.where(
            self.has_rows, self.time[first] if len(self.g) else 0, np.nan
        ).astype(float)
        self.first_row = self.starts[:-1][self.g] if len(self.g) else self.g

    def window(self, days: int | None, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the end of its group's window (``offset`` days before t), and whether the
        row lies in the ``days`` before that end (None: all history). Computed once per
        window: many aggregates share one."""
        key = (days, offset)
        if key not in self._windows:
            end = self.t[self.g] - offset * DAY_US
            inside = self.time < end
            if days is not None:
                inside &= self.time >= end - days * DAY_US
            self._windows[key] = (end, inside)
        return self._windows[key]

    def next_time(self) -> np.ndarray:
        """Each row's next row time in its group (+inf for the last)."""
        following = np.full(len(self.g), np.inf)
        if len(self.g) > 1:
            same = self.g[1:] == self.g[:-1]
            following[:-1] = np.where(same, self.time[1:], np.inf)
        return following


def grouped_reduce(
    aggregate: Aggregate, groups: Groups, where: np.ndarray, value: np.ndarray | None
) -> np.ndarray:
    """The aggregate per group; NaN for a group without any row (of the source) before t."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if aggregate.agg in TIME_WEIGHTED_AGGS:
            result = _time_weighted(aggregate, groups, where, value)
        else:
            end, inside = groups.window(aggregate.window, aggregate.offset)
            result = _reduce(aggregate, groups, where & inside, value, end)
    return np.where(groups.has_rows, result, np.nan)


def _reduce(
    aggregate: Aggregate,
    groups: Groups,
    selected: np.ndarray,
    value: np.ndarray | None,
    end: np.ndarray,
) -> np.ndarray:
    g, n, agg = groups.g, groups.n, aggregate.agg
    if agg == "count":
        return np.bincount(g[selected], minlength=n).astype(float)
    if agg in ("days_since_last", "days_since_first", "last", "first"):
        rows = np.flatnonzero(selected)
        edge = _segment_edges(g[rows], last=agg in ("days_since_last", "last"))
        out = np.full(n, np.nan)
        chosen = rows[edge]
        if agg.startswith("days_since"):
            out[g[chosen]] = (groups.t[g[chosen]] - groups.time[chosen]) / DAY_US
        else:
            assert value is not None
            out[g[chosen]] = value[chosen]
        return out
    if agg == "active_days":
        rows = np.flatnonzero(selected)
        day = groups.time[rows] // DAY_US
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (g[rows][1:] != g[rows][:-1]) | (day[1:] != day[:-1])
        return np.bincount(g[rows][new], minlength=n).astype(float)
    if agg in PERIOD_AGGS:
        return _periods(aggregate, groups, selected, value, end)
    assert value is not None
    ok = selected & ~np.isnan(value)
    in_group = g[ok]
    if agg in ("sum", "mean"):
        total = np.bincount(in_group, weights=value[ok], minlength=n)
        if agg == "sum":
            return total
        count = np.bincount(in_group, minlength=n).astype(float)
        return np.where(count > 0, total / count, np.nan)
    if agg in ("min", "max"):
        rows = np.flatnonzero(ok)
        out = np.full(n, np.nan)
        if len(rows):
            starts = np.flatnonzero(_segment_edges(g[rows], last=False))
            reduce = np.minimum if agg == "min" else np.maximum
            out[g[rows[starts]]] = reduce.reduceat(value[rows], starts)
        return out
    count = np.bincount(in_group, minlength=n).astype(float)
    center = np.nan_to_num(value[groups.first_row])
    y = value - center
    if agg == "std":
        s1 = np.bincount(in_group, weights=y[ok], minlength=n)
        s2 = np.bincount(in_group, weights=y[ok] ** 2, minlength=n)
        return sample_std(count, s1, s2)
    if agg == "slope":
        x = (groups.time - groups.time[groups.first_row]) / DAY_US
        sums = [np.bincount(in_group, weights=w[ok], minlength=n) for w in (x, y, x * x, x * y)]
        return least_squares_slope(count, *sums)
    raise ValueError(f"unknown aggregation {agg!r}")


def sample_std(count: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    variance = (s2 - s1 * s1 / count) / (count - 1)
    return np.where(count >= 2, np.sqrt(np.maximum(variance, 0.0)), np.nan)


def least_squares_slope(
    count: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxx: np.ndarray, sxy: np.ndarray
) -> np.ndarray:
    spread = count * sxx - sx * sx
    # x is days from the customer's first row: times closer than about 1e-6 of that span
    # cannot be told apart in one-pass sums, and count as the same time
    flat = spread <= 1e-12 * np.maximum(count * sxx, 1e-300)
    return np.where((count >= 2) & ~flat, (count * sxy - sx * sy) / spread, np.nan)


def _segment_edges(g: np.ndarray, *, last: bool) -> np.ndarray:
    """Rows (of ``g``, sorted) that are the first (or last) of their group."""
    edge = np.ones(len(g), dtype=bool)
    if len(g) > 1:
        if last:
            edge[:-1] = g[1:] != g[:-1]
        else:
            edge[1:] = g[1:] != g[:-1]
    return edge


def _periods(
    aggregate: Aggregate,
    groups: Groups,
    selected: np.ndarray,
    value: np.ndarray | None,
    end: np.ndarray,
) -> np.ndarray:
    k, n, g = aggregate.periods, groups.n, groups.g
    if value is not None:
        selected = selected & ~np.isnan(value)
    period = (end - groups.time - 1) // PERIOD_US  # [end - 30k, end - 30(k-1)) is period k-1
    cell = g[selected] * k + period[selected]
    counts = np.bincount(cell, minlength=n * k).reshape(n, k)
    group_end = groups.t - aggregate.offset * DAY_US
    starts = group_end[:, None] - PERIOD_US * np.arange(1, k + 1)[None, :]
    qualifies = starts >= groups.first_time[:, None]
    if aggregate.agg != "period_cv":
        return period_counts(aggregate, counts, qualifies)
    assert value is not None
    sums = np.bincount(cell, weights=value[selected], minlength=n * k).reshape(n, k)
    return period_cv(sums, qualifies)


def period_counts(aggregate: Aggregate, counts: np.ndarray, qualifies: np.ndarray) -> np.ndarray:
    """``periods_with`` or ``periods_without`` from the rows per (group, period) and whether
    each period starts on or after the group's first row."""
    periods: np.ndarray  # numpy's stubs type a sum along an axis as Any
    if aggregate.agg == "periods_with":
        periods = (counts > 0).sum(axis=1)
    else:
        periods = (qualifies & (counts == 0)).sum(axis=1)
    return periods.astype(float)


def period_cv(sums: np.ndarray, qualifies: np.ndarray) -> np.ndarray:
    """std / mean of the qualifying periods' sums (population std; 2+ periods)."""
    count = qualifies.sum(axis=1)
    mean = np.where(qualifies, sums, 0.0).sum(axis=1) / count
    spread = np.where(qualifies, (sums - mean[:, None]) ** 2, 0.0).sum(axis=1) / count
    return np.where((count >= 2) & (mean != 0), np.sqrt(spread) / mean, np.nan)


def _time_weighted(
    aggregate: Aggregate, groups: Groups, where: np.ndarray, value: np.ndarray | None
) -> np.ndarray:
    """Each row's state holds from its time until the group's next row; the part of that
    inside the window counts (``days``: its length; ``time_mean``: the value's mean)."""
    b = (groups.t - aggregate.offset * DAY_US).astype(float)[groups.g]
    a = b - aggregate.window * DAY_US if aggregate.window is not None else -np.inf
    start = np.maximum(groups.time, a)
    stop = np.minimum(groups.next_time(), b)
    weight = np.where(where, np.maximum(stop - start, 0.0), 0.0)
    if value is not None:
        weight = np.where(np.isnan(value), 0.0, weight)
    held = np.bincount(groups.g, weights=weight, minlength=groups.n)
    if aggregate.agg == "days":
        return held / DAY_US
    assert value is not None
    total = np.bincount(groups.g, weights=weight * np.nan_to_num(value), minlength=groups.n)
    return np.where(held > 0, total / held, np.nan)
