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

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from predelinq.features.combine import feature_columns
from predelinq.features.declarations import (
    DAY_US,
    PERIOD_AGGS,
    PERIOD_DAYS,
    SECOND_US,
    TIME_WEIGHTED_AGGS,
    Aggregate,
    FeatureSet,
    Where,
)
from predelinq.features.events import Events, Rows, condition_mask, payment_fields, prepare_events
from predelinq.features.online import (
    Groups,
    customer_values,
    grouped_reduce,
    least_squares_slope,
    period_counts,
    period_cv,
    sample_std,
)

PARALLEL_MIN_OBSERVATIONS = 20_000  # below this, threads cost more than they save
Positions = npt.NDArray[np.intp]  # row positions among a selection's rows


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
    masks: dict[Where, np.ndarray] = {}
    selections: dict[Where, Selection] = {}
    valued: dict[tuple[Where, str], Selection] = {}

    def compute(aggregate: Aggregate) -> np.ndarray:
        if aggregate.source == "customers":
            return customer_values(aggregate, events.customers, c_sorted, t_sorted)
        if aggregate.source == "transactions":
            if aggregate.where not in selections:
                mask = condition_mask(aggregate.where, tx.size, tx_lookup)
                selections[aggregate.where] = Selection.of(mask)
            where = selections[aggregate.where]
            if aggregate.value is None:
                return transactions.reduce(aggregate, where, None, None)
            tx_value = tx.value(aggregate.value)
            if (aggregate.where, aggregate.value) not in valued:
                empty = np.isnan(tx_value)
                selection = Selection.of(where.mask & ~empty) if empty.any() else where
                valued[(aggregate.where, aggregate.value)] = selection
            selection = valued[(aggregate.where, aggregate.value)]
            return transactions.reduce(aggregate, where, selection, tx_value)
        groups, lookup = payments
        if aggregate.where not in masks:
            masks[aggregate.where] = condition_mask(aggregate.where, len(groups.g), lookup)
        value = lookup[aggregate.value].astype(float) if aggregate.value else None
        return grouped_reduce(aggregate, groups, masks[aggregate.where], value)

    unsorted = np.empty(m, dtype=np.int64)
    unsorted[order] = np.arange(m)
    return {name: column[unsorted] for name, column in feature_columns(features, compute).items()}


def _payment_pairs(
    events: Events, c: np.ndarray, t: np.ndarray
) -> tuple[Groups, dict[str, np.ndarray]]:
    """Each observation's statements due before its date, grouped by observation."""
    pay = events.payments
    first = pay.starts[c]
    counts = _Keys(pay).search(c, t) - first  # the customer's statements due before t
    group = np.repeat(np.arange(len(c)), counts)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rows = first[group] + (np.arange(len(group)) - offsets[group])
    groups = Groups(group, pay.time[rows], t, len(c))
    return groups, payment_fields(pay, events.customers, rows, t[group])


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
        found: np.ndarray = np.searchsorted(self.keys, c * self.span + relative, side="left")
        return found  # (numpy's stubs type a search for untyped values as Any)


@dataclass
class Selection:
    """The rows of a mask, compacted. A row range [lo, hi) holds the compacted rows
    [a, b) with a, b the binary-searched positions of lo and hi among them."""

    mask: np.ndarray
    rows: np.ndarray
    padded: np.ndarray  # rows and one more index: what ``pick`` gathers
    found: dict[int | None, Positions]  # positions of a Ranges bound, by its days before t

    @classmethod
    def of(cls, mask: np.ndarray) -> Selection:
        rows = np.flatnonzero(mask)
        return cls(mask, rows, np.append(rows, 0), {})

    def position(self, days: int | None, bound: np.ndarray) -> Positions:
        """Where each of ``bound`` (row indices, ``days`` before t; None: the customers'
        first rows) falls among the selected rows; the few distinct bounds are cached."""
        if days not in self.found:
            self.found[days] = np.searchsorted(self.rows, bound)
        return self.found[days]

    def pick(self, values: np.ndarray) -> np.ndarray:
        """The selected rows' values and one more (``span_reduce`` needs an index past the
        last): one gather, no copy."""
        picked: np.ndarray = values[self.padded]
        return picked  # (numpy's stubs type indexing by an untyped array as Any)


class Ranges:
    """Observations' windows as row ranges of one sorted source."""

    def __init__(self, rows: Rows, c: np.ndarray, t: np.ndarray) -> None:
        self.rows, self.c, self.t = rows, c, t
        self.keys = _Keys(rows)
        self.first = rows.starts[c]
        self.before_t = self.keys.search(c, t)
        self.has_rows = self.before_t > self.first
        size = rows.size
        self.customer_first = rows.starts[rows.c] if size else rows.c  # per row
        self.first_time = np.where(
            self.has_rows,
            rows.time[np.minimum(self.first, max(size - 1, 0))] if size else 0,
            np.nan,
        ).astype(float)
        self._found: dict[int, np.ndarray] = {0: self.before_t}
        self._held_cache: np.ndarray | None = None

    def index_from(self, days: int) -> np.ndarray:
        """Each observation's first row of its customer at or after ``t - days`` (the windows'
        bounds; a few distinct ones serve every aggregate)."""
        if days not in self._found:
            self._found[days] = self.keys.search(self.c, self.t - days * DAY_US)
        return self._found[days]

    def spans(
        self, selection: Selection, aggregate: Aggregate, extra_days: int = 0
    ) -> tuple[Positions, Positions]:
        """The window's rows among ``selection``'s, as ``bounds`` gives them among all."""
        lo, hi = self.bounds(aggregate, extra_days)
        end_days = aggregate.offset + extra_days
        start_days = None if aggregate.window is None else end_days + aggregate.window
        return selection.position(start_days, lo), selection.position(end_days, hi)

    def bounds(self, aggregate: Aggregate, extra_days: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Rows of [end - window - extra_days, end - extra_days) with end = t - offset."""
        end_days = aggregate.offset + extra_days
        hi = self.index_from(end_days)
        if aggregate.window is None:
            return self.first, hi
        return self.index_from(end_days + aggregate.window), hi

    def reduce(
        self,
        aggregate: Aggregate,
        where: Selection,
        valued: Selection | None,
        value: np.ndarray | None,
    ) -> np.ndarray:
        """The aggregate per observation. ``where``: the rows of its conditions; ``valued``:
        those of them whose value is not empty (what sums, means and extremes reduce)."""
        if self.rows.size == 0:  # no customer has a row: every feature of the source is NaN
            return np.full(len(self.t), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self._reduce(aggregate, where, valued or where, value)
        return np.where(self.has_rows, result, np.nan)

    def _reduce(
        self, aggregate: Aggregate, where: Selection, valued: Selection, value: np.ndarray | None
    ) -> np.ndarray:
        agg, rows = aggregate.agg, self.rows
        if agg in TIME_WEIGHTED_AGGS:
            return self._time_weighted(aggregate, valued, value)
        if agg in PERIOD_AGGS:
            return self._periods(aggregate, valued, value)
        if agg in ("count", "last", "days_since_last", "first", "days_since_first"):
            a, b = self.spans(where, aggregate)
            if agg == "count":
                return (b - a).astype(float)
            chosen = b - 1 if agg in ("last", "days_since_last") else a
            return self._at(agg, value, where.rows, chosen, b > a)
        if agg == "active_days":
            a, b = self.spans(where, aggregate)
            new_days = np.zeros(len(where.rows) + 1, dtype=np.int64)
            np.cumsum(_new_days(rows, where.rows), out=new_days[1:])
            return (new_days[b] - new_days[a]).astype(float)
        assert value is not None
        a, b = self.spans(valued, aggregate)
        count = (b - a).astype(float)
        picked = valued.pick(value)
        if agg in ("sum", "mean"):
            total = span_reduce(np.add, picked, a, b, 0.0)
            return total if agg == "sum" else np.where(count > 0, total / count, np.nan)
        if agg in ("min", "max"):
            return span_reduce(np.minimum if agg == "min" else np.maximum, picked, a, b, np.nan)
        first = valued.pick(self.customer_first)
        y = picked - np.nan_to_num(value[first])  # centred on the customer's first value
        if agg == "std":
            s1, s2 = (span_reduce(np.add, w, a, b, 0.0) for w in (y, y * y))
            return sample_std(count, s1, s2)
        if agg == "slope":
            x = (valued.pick(rows.time) - rows.time[first]) / DAY_US
            sums = [span_reduce(np.add, w, a, b, 0.0) for w in (x, y, x * x, x * y)]
            return least_squares_slope(count, *sums)
        raise ValueError(f"unknown aggregation {agg!r}")

    def _at(
        self,
        agg: str,
        value: np.ndarray | None,
        selected: np.ndarray,
        chosen: np.ndarray,
        found: np.ndarray,
    ) -> np.ndarray:
        """The chosen compacted row's value, or days from its time to t."""
        if not len(selected):
            return np.full(len(self.t), np.nan)
        row = selected[np.clip(chosen, 0, len(selected) - 1)]
        if agg.startswith("days_since"):
            picked = (self.t - self.rows.time[row]) / DAY_US
        else:
            assert value is not None
            picked = value[row]
        return np.where(found, picked, np.nan)

    def _periods(
        self, aggregate: Aggregate, valued: Selection, value: np.ndarray | None
    ) -> np.ndarray:
        k = aggregate.periods
        counts = np.empty((len(self.c), k))
        sums = np.empty((len(self.c), k))
        one_period = Aggregate(
            aggregate.source, "count", window=PERIOD_DAYS, offset=aggregate.offset
        )
        picked = valued.pick(value) if value is not None else None
        for p in range(k):
            a, b = self.spans(valued, one_period, extra_days=p * PERIOD_DAYS)
            counts[:, p] = b - a
            sums[:, p] = span_reduce(np.add, picked, a, b, 0.0) if picked is not None else b - a
        end = self.t - aggregate.offset * DAY_US
        starts = end[:, None] - PERIOD_DAYS * DAY_US * np.arange(1, k + 1)[None, :]
        qualifies = starts >= self.first_time[:, None]
        if aggregate.agg != "period_cv":
            return period_counts(aggregate, counts, qualifies)
        return period_cv(sums, qualifies)

    def _time_weighted(
        self, aggregate: Aggregate, valued: Selection, value: np.ndarray | None
    ) -> np.ndarray:
        """As the online engine's: rows inside the window count their whole holding time;
        the last row of the window holds until the window's end; the row before the window
        (the customer's state when it opens) holds until the first row inside it."""
        rows = self.rows
        times = rows.time.astype(float)
        held = self._held()
        lo, hi = self.bounds(aggregate)
        b = (self.t - aggregate.offset * DAY_US).astype(float)
        a = b - aggregate.window * DAY_US if aggregate.window is not None else None
        # rows lo..hi-2 hold until the next row, inside the window: among the selected rows,
        # those from lo's position up to (not including) row hi-1
        first, hi_position = self.spans(valued, aggregate)
        last_selected = (hi_position > first) & (
            valued.padded[np.maximum(hi_position - 1, 0)] == hi - 1
        )
        stop = np.where(last_selected, hi_position - 1, hi_position)
        picked_held = valued.pick(held)
        weight_sum = span_reduce(np.add, picked_held, first, stop, 0.0)
        v = np.ones(rows.size) if value is None else np.nan_to_num(value)
        value_sum = span_reduce(np.add, picked_held * valued.pick(v), first, stop, 0.0)
        if rows.size:
            w = valued.mask
            last = np.maximum(hi - 1, 0)
            tail = np.where((hi > lo) & w[last], b - times[last], 0.0)
            weight_sum += tail
            value_sum += tail * v[last]
            if a is not None:
                before = np.maximum(lo - 1, 0)
                carried = (lo - 1 >= self.first) & w[before]
                until = np.where(hi > lo, times[np.minimum(lo, rows.size - 1)], b)
                head = np.where(carried, np.minimum(until, b) - a, 0.0)
                weight_sum += head
                value_sum += head * v[before]
        if aggregate.agg == "days":
            return weight_sum / DAY_US
        return np.where(weight_sum > 0, value_sum / weight_sum, np.nan)

    def _held(self) -> np.ndarray:
        """How long each row's state holds before its customer's next row (0 for the last)."""
        if self._held_cache is None:
            rows = self.rows
            held = np.zeros(rows.size)
            if rows.size > 1:
                same = rows.c[1:] == rows.c[:-1]
                held[:-1] = np.where(same, np.diff(rows.time).astype(float), 0.0)
            self._held_cache = held
        return self._held_cache


def span_reduce(
    reduce: np.ufunc, values: np.ndarray, a: np.ndarray, b: np.ndarray, empty: float
) -> np.ndarray:
    """reduce(values[a[i]:b[i]]) for each i, ``empty`` where a[i] == b[i]: one
    ``reduceat`` over interleaved bounds, in row order (sums keep full precision).
    ``values`` carries one element past the last that any b[i] may point at (``pick``)."""
    if len(a) == 0:
        return np.empty(0)
    bounds = np.empty(2 * len(a), dtype=np.int64)
    bounds[0::2], bounds[1::2] = a, b
    result = reduce.reduceat(values, bounds)[0::2]
    return np.where(b > a, result, empty)


def _new_days(rows: Rows, selected: np.ndarray) -> np.ndarray:
    """Of the selected rows, those that are their customer's first selected row of a day."""
    day = rows.time[selected] // DAY_US
    customer = rows.c[selected]
    new = np.ones(len(selected), dtype=bool)
    if len(selected) > 1:
        new[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    return new
