"""The historical engine: every declared feature for many (customer, date) observations
(training, backtests).

Transactions are sorted once by (customer, time); each observation's window is then a
contiguous range of rows, found by binary search, and each aggregate is a reduction over
those ranges (``np.add.reduceat`` and friends over interleaved range bounds). The work is
one pass over the rows per aggregate plus the windows' lengths, whatever the number of
distinct dates, and nothing is ever expanded to (observation, transaction) pairs.

Payments are few per customer and their fields depend on the date (a statement is unpaid
until it is paid), so each observation's statements are expanded and reduced with the
online engine's ``grouped_reduce``, grouped by observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa

from predelinq.features.combine import feature_columns
from predelinq.features.declarations import DAY_US, PERIOD_DAYS, Aggregate, FeatureSet
from predelinq.features.events import Events, Rows, condition_mask, payment_fields, prepare_events
from predelinq.features.online import (
    Groups,
    customer_values,
    grouped_reduce,
    least_squares_slope,
    period_cv,
    sample_std,
)

SECOND_US = 1_000_000
PARALLEL_MIN_OBSERVATIONS = 20_000  # below this, threads cost more than they save


def features_for_observations(
    observations: pl.DataFrame,
    inputs: Mapping[str, pa.Table | pl.DataFrame],
    features: FeatureSet,
    *,
    threads: int = 1,
) -> pl.DataFrame:
    """Features for each ``(customer_id, observation_date)`` row, in the same order.

    Returns ``customer_id``, ``observation_date`` and every feature as Float64, missing
    values as NaN. Only rows strictly before each observation date count. With ``threads``
    above 1, large inputs are split into that many groups of customers computed at once
    (numpy releases the GIL in its loops).
    """
    customer_id = observations["customer_id"].cast(pl.String)
    observation_date = observations["observation_date"].cast(pl.Date)
    ids = customer_id.unique(maintain_order=True)
    c = (
        customer_id.to_frame()
        .join(
            ids.to_frame().with_row_index("c"), on="customer_id", how="left", maintain_order="left"
        )["c"]
        .to_numpy()
        .astype(np.int64)
    )
    t = observation_date.cast(pl.Int64).to_numpy() * DAY_US
    events = prepare_events(ids.to_list(), inputs, features.categories)
    if threads > 1 and len(c) >= PARALLEL_MIN_OBSERVATIONS:
        columns = _columns_in_parts(events, c, t, features, threads)
    else:
        columns = columns_for(events, c, t, features)
    frame = pl.DataFrame(
        {name: columns[name] for name in features.names},
        schema={name: pl.Float64 for name in features.names},
        height=len(c),
    )
    return frame.insert_column(0, observation_date).insert_column(0, customer_id)


def _columns_in_parts(
    events: Events, c: np.ndarray, t: np.ndarray, features: FeatureSet, parts: int
) -> dict[str, np.ndarray]:
    ranges = events.balanced_parts(parts)
    rows = [np.flatnonzero((c >= first) & (c < stop)) for first, stop in ranges]

    def part(k: int) -> dict[str, np.ndarray]:
        first, stop = ranges[k]
        return columns_for(events.part(first, stop), c[rows[k]] - first, t[rows[k]], features)

    with ThreadPoolExecutor(len(ranges)) as pool:
        results = list(pool.map(part, range(len(ranges))))
    columns = {name: np.empty(len(c)) for name in features.names}
    for k, result in enumerate(results):
        for name, values in result.items():
            columns[name][rows[k]] = values
    return columns


def columns_for(
    events: Events, c: np.ndarray, t: np.ndarray, features: FeatureSet
) -> dict[str, np.ndarray]:
    """Each feature's column for observations (customer position ``c``, date ``t`` in
    microseconds)."""
    m = len(c)
    if m == 0:
        return {name: np.empty(0) for name in features.names}
    order = np.lexsort((t, c))  # ranges of consecutive observations overlap: cheap reduceat
    c_sorted, t_sorted = c[order], t[order]
    transactions = Ranges(events.transactions, c_sorted, t_sorted)
    payments = _payment_pairs(events, c_sorted, t_sorted)
    tx = events.transactions
    tx_lookup = tx.fields()
    masks: dict[tuple, np.ndarray] = {}

    def compute(aggregate: Aggregate) -> np.ndarray:
        if aggregate.source == "customers":
            return customer_values(aggregate, events.customers, c_sorted, t_sorted)
        if aggregate.source == "transactions":
            if aggregate.where not in masks:
                masks[aggregate.where] = condition_mask(aggregate.where, tx.size, tx_lookup)
            value = tx.value(aggregate.value) if aggregate.value else None
            return transactions.reduce(aggregate, masks[aggregate.where], value)
        groups, lookup = payments
        key = ("payments", aggregate.where)
        if key not in masks:
            masks[key] = condition_mask(aggregate.where, len(groups.g), lookup)
        value = lookup[aggregate.value].astype(float) if aggregate.value else None
        return grouped_reduce(aggregate, groups, masks[key], value)

    unsorted = np.empty(m, dtype=np.int64)
    unsorted[order] = np.arange(m)
    return {name: column[unsorted] for name, column in feature_columns(features, compute).items()}


def _payment_pairs(
    events: Events, c: np.ndarray, t: np.ndarray
) -> tuple[Groups, dict[str, np.ndarray]]:
    """Each observation's statements due before its date, grouped by observation."""
    pay = events.payments
    first = pay.starts[c]
    stop = first + _count_before(pay, c, t)
    counts = stop - first
    group = np.repeat(np.arange(len(c)), counts)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rows = first[group] + (np.arange(len(group)) - offsets[group])
    groups = Groups.of(group, pay.time[rows], t, len(c))
    return groups, payment_fields(pay, events.customers, rows, t[group])


def _count_before(rows: Rows, c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """How many of customer c's rows are before t (rows sorted by customer, then time)."""
    keys = _Keys(rows)
    return keys.search(c, t) - rows.starts[c]


class _Keys:
    """(customer, time) as one sortable int64: customer * span + (seconds - earliest). Whole
    seconds keep the product in range; every bound searched is a midnight, so
    ``time < bound`` holds exactly when ``floor(time to seconds) < bound``."""

    def __init__(self, rows: Rows) -> None:
        seconds = rows.time // SECOND_US
        self.earliest = int(seconds.min()) if rows.size else 0
        latest = int(seconds.max()) if rows.size else 0
        self.span = latest - self.earliest + 2
        self.keys = rows.c * self.span + (seconds - self.earliest)

    def search(self, c: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """Index of customer c's first row at or after ``bound`` (microseconds, a midnight)."""
        relative = np.clip(bound // SECOND_US - self.earliest, 0, self.span - 1)
        return np.searchsorted(self.keys, c * self.span + relative, side="left")


class Ranges:
    """Observations' windows as row ranges of one sorted source."""

    def __init__(self, rows: Rows, c: np.ndarray, t: np.ndarray) -> None:
        self.rows, self.c, self.t = rows, c, t
        self.keys = _Keys(rows)
        self.first = rows.starts[c]
        self.before_t = self.keys.search(c, t)
        self.has_rows = self.before_t > self.first
        size = rows.size
        customer_first = rows.starts[rows.c] if size else rows.c
        self.customer_first = customer_first  # per row: its customer's first row
        self.first_time = np.where(
            self.has_rows,
            rows.time[np.minimum(self.first, max(size - 1, 0))] if size else 0,
            np.nan,
        ).astype(float)
        self._found: dict[int, np.ndarray] = {0: self.before_t}
        self._held_cache: tuple[np.ndarray, np.ndarray] | None = None

    def index_from(self, days: int) -> np.ndarray:
        """Each observation's first row of its customer at or after ``t - days`` (the windows'
        bounds; a few distinct ones serve every aggregate)."""
        if days not in self._found:
            self._found[days] = self.keys.search(self.c, self.t - days * DAY_US)
        return self._found[days]

    def bounds(self, aggregate: Aggregate, extra_days: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Rows of [end - window - extra_days, end - extra_days) with end = t - offset."""
        end_days = aggregate.offset + extra_days
        hi = self.index_from(end_days)
        if aggregate.window is None:
            return self.first, hi
        return self.index_from(end_days + aggregate.window), hi

    def reduce(
        self, aggregate: Aggregate, where: np.ndarray, value: np.ndarray | None
    ) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self._reduce(aggregate, where, value)
        return np.where(self.has_rows, result, np.nan)

    def _reduce(
        self, aggregate: Aggregate, where: np.ndarray, value: np.ndarray | None
    ) -> np.ndarray:
        agg, rows = aggregate.agg, self.rows
        if agg in ("days", "time_mean"):
            return self._time_weighted(aggregate, where, value)
        if agg in ("periods_with", "periods_without", "period_cv"):
            return self._periods(aggregate, where, value)
        lo, hi = self.bounds(aggregate)
        if agg == "count":
            return range_count(where, lo, hi)
        if agg == "active_days":
            return range_count(_new_days(rows, where), lo, hi)
        if agg in ("last", "days_since_last"):
            index = _last_index(where)
            chosen = np.where(hi > 0, index[np.maximum(hi - 1, 0)], -1) if len(index) else hi - 1
            found = (hi > lo) & (chosen >= lo)
            return self._at(agg, value, chosen, found)
        if agg in ("first", "days_since_first"):
            index = _next_index(where)
            chosen = index[np.minimum(lo, len(index) - 1)] if len(index) else lo
            found = (lo < hi) & (chosen < hi)
            return self._at(agg, value, chosen, found)
        assert value is not None
        ok = where & ~np.isnan(value)
        count = range_count(ok, lo, hi)
        if agg in ("sum", "mean"):
            total = range_sum(value, lo, hi, where=ok)
            return total if agg == "sum" else np.where(count > 0, total / count, np.nan)
        if agg in ("min", "max"):
            if agg == "min":
                return range_extreme(np.minimum, np.where(ok, value, np.inf), lo, hi)
            return range_extreme(np.maximum, np.where(ok, value, -np.inf), lo, hi)
        y = value - np.nan_to_num(value[self.customer_first])
        if agg == "std":
            return sample_std(
                count, range_sum(y, lo, hi, where=ok), range_sum(y * y, lo, hi, where=ok)
            )
        if agg == "slope":
            x = (rows.time - rows.time[self.customer_first]) / DAY_US
            sums = [range_sum(w, lo, hi, where=ok) for w in (x, y, x * x, x * y)]
            return least_squares_slope(count, *sums)
        raise ValueError(f"unknown aggregation {agg!r}")

    def _at(
        self, agg: str, value: np.ndarray | None, chosen: np.ndarray, found: np.ndarray
    ) -> np.ndarray:
        safe = np.where(found, chosen, 0)
        if agg.startswith("days_since"):
            picked = (self.t - self.rows.time[safe]) / DAY_US if self.rows.size else self.t * 0.0
        else:
            assert value is not None
            picked = value[safe] if self.rows.size else np.zeros(len(self.t))
        return np.where(found, picked, np.nan)

    def _periods(
        self, aggregate: Aggregate, where: np.ndarray, value: np.ndarray | None
    ) -> np.ndarray:
        k = aggregate.periods
        ok = where if value is None else where & ~np.isnan(value)
        counts = np.empty((len(self.c), k))
        sums = np.empty((len(self.c), k))
        one_period = Aggregate(
            aggregate.source, "count", window=PERIOD_DAYS, offset=aggregate.offset
        )
        running = running_count(ok)
        for p in range(k):
            lo, hi = self.bounds(one_period, extra_days=p * PERIOD_DAYS)
            counts[:, p] = running[hi] - running[lo]
            sums[:, p] = range_sum(value, lo, hi, where=ok) if value is not None else counts[:, p]
        end = self.t - aggregate.offset * DAY_US
        starts = end[:, None] - PERIOD_DAYS * DAY_US * np.arange(1, k + 1)[None, :]
        qualifies = starts >= self.first_time[:, None]
        if aggregate.agg == "periods_with":
            return (counts > 0).sum(axis=1).astype(float)
        if aggregate.agg == "periods_without":
            return (qualifies & (counts == 0)).sum(axis=1).astype(float)
        return period_cv(sums, qualifies)

    def _time_weighted(
        self, aggregate: Aggregate, where: np.ndarray, value: np.ndarray | None
    ) -> np.ndarray:
        """As the online engine's: rows inside the window count their whole holding time;
        the last row of the window holds until the window's end; the row before the window
        (the customer's state when it opens) holds until the first row inside it."""
        rows = self.rows
        weight_of = where if value is None else where & ~np.isnan(value)
        times, held = self._held()
        v = np.ones(rows.size) if value is None else np.nan_to_num(value)
        w = weight_of.astype(float)
        lo, hi = self.bounds(aggregate)
        b = (self.t - aggregate.offset * DAY_US).astype(float)
        a = b - aggregate.window * DAY_US if aggregate.window is not None else None
        inner = np.maximum(hi - 1, lo)  # rows lo..hi-2 hold until the next row, inside
        weight_sum = range_sum(held, lo, inner, where=weight_of)
        value_sum = range_sum(held * v, lo, inner, where=weight_of) if value is not None else 0
        if rows.size:
            last = np.maximum(hi - 1, 0)
            inside = hi > lo
            tail = np.where(inside, w[last] * (b - times[last]), 0.0)
            weight_sum += tail
            value_sum += tail * v[last]
            if a is not None:
                before = lo - 1
                carried = (before >= self.first) & (before >= 0)
                safe = np.maximum(before, 0)
                until = np.where(inside, times[np.minimum(lo, rows.size - 1)], b)
                head = np.where(carried, w[safe] * (np.minimum(until, b) - a), 0.0)
                weight_sum += head
                value_sum += head * v[safe]
        if aggregate.agg == "days":
            return weight_sum / DAY_US
        return np.where(weight_sum > 0, value_sum / weight_sum, np.nan)

    def _held(self) -> tuple[np.ndarray, np.ndarray]:
        """Row times as floats, and how long each row's state holds before the customer's
        next row (0 for a customer's last row)."""
        if self._held_cache is None:
            rows = self.rows
            times = rows.time.astype(float)
            held = np.zeros(rows.size)
            if rows.size > 1:
                same = rows.c[1:] == rows.c[:-1]
                held[:-1] = np.where(same, times[1:] - times[:-1], 0.0)
            self._held_cache = (times, held)
        return self._held_cache


def _interleaved(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    return bounds


def range_sum(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, where: np.ndarray | None = None
) -> np.ndarray:
    """sum(values[lo[i]:hi[i]]) over the rows of ``where`` for each i (0 for none): summed
    in row order, not as differences of running sums, so no precision is lost."""
    padded = np.zeros(len(values) + 1)  # reduceat needs an index past the last row
    np.copyto(padded[:-1], values, where=True if where is None else where)
    return _range_reduce(np.add, padded, lo, hi, 0.0)


def range_count(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many rows of ``mask`` each range holds."""
    running = running_count(mask)
    return (running[hi] - running[lo]).astype(float)


def running_count(mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` before each index (exact: integer counts)."""
    running = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=running[1:])
    return running


def range_extreme(
    reduce: Callable, values: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """min or max over each range (NaN where none is finite)."""
    result = _range_reduce(reduce, np.append(values, 0.0), lo, hi, np.nan)  # [N]: a start only
    return np.where(np.isinf(result), np.nan, result)


def _range_reduce(
    reduce: Callable, extended: np.ndarray, lo: np.ndarray, hi: np.ndarray, empty: float
) -> np.ndarray:
    if len(lo) == 0:
        return np.empty(0)
    result = reduce.reduceat(extended, _interleaved(lo, hi))[0::2]  # type: ignore[attr-defined]
    return np.where(hi > lo, result, empty)


def _last_index(mask: np.ndarray) -> np.ndarray:
    """For each row, the latest row at or before it where ``mask`` holds (-1: none)."""
    return (
        np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))
        if len(mask)
        else mask.astype(np.int64)
    )


def _next_index(mask: np.ndarray) -> np.ndarray:
    """For each row, the earliest row at or after it where ``mask`` holds (len: none)."""
    if not len(mask):
        return mask.astype(np.int64)
    marked = np.where(mask, np.arange(len(mask)), len(mask))
    return np.minimum.accumulate(marked[::-1])[::-1]


def _new_days(rows: Rows, mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` that are their customer's first such row of a calendar day."""
    day = rows.time // DAY_US
    previous = np.empty(len(mask), dtype=np.int64)
    if len(mask):
        previous[0] = -1
        previous[1:] = _last_index(mask)[:-1]
    safe = np.maximum(previous, 0)
    first_of_day = (previous < rows.starts[rows.c]) | (day[safe] != day)
    return mask & first_of_day
