"""Rows as the engines see them: each source's rows for the asked customers, as numpy columns,
sorted by customer then time, with the per-row fields of ``declarations.FIELDS``.

Row fields that depend on earlier rows (the running ``balance``, the ``income`` flag) use
only the same customer's earlier rows, so they are point-in-time by construction. Payment
fields that depend on the observation date (``days_late``, ``unpaid`` ...) are computed per
(row, t) by ``payment_fields``. Both engines read these, so they can differ only in how they
reduce rows to features.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from predelinq.db.readers.columns import COLUMNS, CUSTOMERS, PAYMENTS, TRANSACTIONS
from predelinq.features.declarations import (
    DAY_US,
    FIELDS,
    INCOME_CATEGORY,
    LIST_OPS,
    NOT_INCOME_CATEGORIES,
    Condition,
)
from predelinq.features.running import (
    SMALL_CUSTOMERS,
    balances,
    income_flags,
    small_balances,
    small_income_flags,
)
from predelinq.features.text import LazyTexts, SlicedTexts, Text, is_text
from predelinq.ingest.contract import CREDIT, DEBIT

# The columns the engines take: the readers' (one declaration), salary_day as a float (NaN:
# none stated)
TRANSACTION_COLUMNS = COLUMNS[TRANSACTIONS]
PAYMENT_COLUMNS = COLUMNS[PAYMENTS]
CUSTOMER_COLUMNS = {**COLUMNS[CUSTOMERS], "salary_day": pa.float64()}


@dataclass
class Rows:
    """One source's rows of the asked customers, sorted by (customer, time)."""

    c: np.ndarray  # int64: the customer's position among the asked ids
    time: np.ndarray  # int64 microseconds since the epoch (payments: the due date, midnight)
    numbers: dict[str, np.ndarray]  # float64 (NaN: empty)
    texts: Mapping[str, Text]
    flags: dict[str, np.ndarray]
    starts: np.ndarray  # int64 (customers + 1): customer k's rows are starts[k]:starts[k+1]

    @property
    def size(self) -> int:
        return len(self.c)

    def part(self, first: int, stop: int) -> Rows:
        """The rows of customers ``first..stop-1``, renumbered from 0 (views, no copies)."""
        lo, hi = int(self.starts[first]), int(self.starts[stop])
        return Rows(
            c=self.c[lo:hi] - first,
            time=self.time[lo:hi],
            numbers={name: values[lo:hi] for name, values in self.numbers.items()},
            texts=SlicedTexts(self.texts, lo, hi),
            flags={name: values[lo:hi] for name, values in self.flags.items()},
            starts=self.starts[first : stop + 1] - lo,
        )

    def value(self, name: str) -> np.ndarray:
        """A number or flag field as floats (a flag: 1 or 0)."""
        if name in self.numbers:
            return self.numbers[name]
        return self.flags[name].astype(float)

    def fields(self) -> Mapping[str, np.ndarray | Text]:
        """Every field by name, for ``condition_mask`` (text fields encoded when asked)."""
        return _Fields(self)


class _Fields(Mapping[str, "np.ndarray | Text"]):
    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def __getitem__(self, name: str) -> np.ndarray | Text:
        for group in (self.rows.numbers, self.rows.flags, self.rows.texts):
            if name in group:
                return group[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from (*self.rows.numbers, *self.rows.flags, *self.rows.texts)

    def __len__(self) -> int:
        return len(self.rows.numbers) + len(self.rows.flags) + len(self.rows.texts)


@dataclass
class Customers:
    created: np.ndarray  # float microseconds since the epoch; NaN without a customers row
    numbers: dict[str, np.ndarray]

    def part(self, first: int, stop: int) -> Customers:
        return Customers(
            self.created[first:stop],
            {name: values[first:stop] for name, values in self.numbers.items()},
        )


@dataclass
class Events:
    n: int
    customers: Customers
    transactions: Rows
    payments: Rows

    def part(self, first: int, stop: int) -> Events:
        """Customers ``first..stop-1`` alone, renumbered from 0."""
        return Events(
            n=stop - first,
            customers=self.customers.part(first, stop),
            transactions=self.transactions.part(first, stop),
            payments=self.payments.part(first, stop),
        )

    def balanced_parts(self, parts: int) -> list[tuple[int, int]]:
        """``parts`` contiguous customer ranges holding about as many transactions each."""
        rows = self.transactions.starts
        targets = np.linspace(0, rows[-1], parts + 1)[1:-1]
        cuts = np.searchsorted(rows, targets, side="left").clip(0, self.n)
        bounds = np.unique(np.concatenate(([0], cuts, [self.n])))
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def prepare_events(
    customer_ids: Sequence[str],
    inputs: Mapping[str, pa.Table | pl.DataFrame],
    categories: Mapping[str, str] | None = None,
) -> Events:
    """The asked customers' rows from ``read_inputs``-shaped tables (columns missing from a
    table, or typed otherwise by a driver for an empty table, are cast or filled)."""
    ids = pa.array(list(customer_ids), type=pa.string())
    return Events(
        n=len(ids),
        customers=_customers(_typed(inputs["customers"], CUSTOMER_COLUMNS), ids),
        transactions=_transactions(
            _typed(inputs["transactions"], TRANSACTION_COLUMNS), ids, categories or {}
        ),
        payments=_payments(_typed(inputs["payments"], PAYMENT_COLUMNS), ids),
    )


def _typed(frame: pa.Table | pl.DataFrame, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """The columns as ``columns`` types them: absent ones empty, dates and timestamps given as
    text (SQLite) parsed, other types cast; text of any Arrow flavour kept as it is."""
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    arrays = []
    for name, kind in columns.items():
        if name not in table.column_names or table.num_rows == 0:  # drivers type empty
            # columns as they like (int64, null): nothing to keep
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, kind)]))
            continue
        column = table.column(name)
        textual = is_text(column.type)
        if textual and pa.types.is_date(kind):
            column = pc.cast(pc.cast(column, pa.timestamp("us")), kind)
        elif pa.types.is_date(kind) and pa.types.is_integer(column.type):  # days since 1970
            column = pc.cast(pc.cast(column, pa.int32()), kind)
        elif column.type != kind and not (textual and is_text(kind)):
            column = pc.cast(column, kind)
        arrays.append(column)
    return pa.table(arrays, names=list(columns))


def _positions(table: pa.Table, ids: pa.Array) -> np.ndarray:
    column = table.column("customer_id")
    if column.type == pa.string_view():
        column = pc.cast(column, pa.large_string())
    if is_text(column.type) and column.type != ids.type:
        ids = pc.cast(ids, column.type)
    elif not is_text(column.type):
        column = pc.cast(column, ids.type)
    position = pc.index_in(column, value_set=ids)
    return np.asarray(position.fill_null(-1).to_numpy(), dtype=np.int64)


def _floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as int64 microseconds, nulls as 0."""
    micros = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64()).fill_null(0)
    return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64)


def _days(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates as float days since the epoch, NaN when empty."""
    return _floats(pc.cast(column, pa.int32()))


def _starts(c: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(c, np.arange(n + 1), side="left").astype(np.int64)


def _customers(table: pa.Table, ids: pa.Array) -> Customers:
    position = _positions(table, ids)
    known = position >= 0

    def aligned(values: np.ndarray) -> np.ndarray:
        out = np.full(len(ids), np.nan)
        out[position[known]] = values[known]
        return out

    created = _floats(pc.cast(table.column("created_at"), pa.int64()))
    return Customers(
        created=aligned(created),
        numbers={name: aligned(_floats(table.column(name))) for name in FIELDS["customers"]},
    )


_TEXT_FIELDS = [name for name, (kind, _) in FIELDS["transactions"].items() if kind == "text"]


def _transactions(table: pa.Table, ids: pa.Array, categories: Mapping[str, str]) -> Rows:
    # Columns become numpy arrays (text as dictionary codes) before anything is reordered:
    # taking rows of an Arrow table with five text columns cost seconds at 3M rows.
    position = _positions(table, ids)
    time = _micros(table.column("txn_time"))
    amount = _floats(table.column("amount"))
    balance_after = _floats(table.column("balance_after"))
    keep = position >= 0
    order = _order(position, time, table.column("txn_id"), keep)
    c, time, amount, balance_after = (
        position[order],
        time[order],
        amount[order],
        balance_after[order],
    )
    texts = LazyTexts({name: table.column(name) for name in _TEXT_FIELDS}, order, categories)
    debit = texts["txn_type"].equals(DEBIT)
    credit = texts["txn_type"].equals(CREDIT)
    flow = np.where(debit, -amount, amount)
    category = texts["category"]
    # the counterparty of a credit: its merchant, else its category (codes kept apart); only
    # the credits' merchants are encoded (most rows are debits)
    credits = np.flatnonzero(credit)
    merchant = Text.of(pc.take(table.column("merchant_id"), pa.array(order[credits])))
    counterparty = np.zeros(len(c), dtype=np.int64)
    counterparty[credits] = np.where(
        merchant.codes >= 0, merchant.codes, -2 - category.codes[credits].astype(np.int64)
    )
    starts = _starts(c, len(ids))
    frame = pl.DataFrame(
        {
            "c": c,
            "time": time,
            "flow": flow,
            "amount": amount,
            "credit": credit,
            "balance_after": balance_after,
            "counterparty": counterparty,
            "salary": category.equals(INCOME_CATEGORY),
            "not_income": category.isin(NOT_INCOME_CATEGORIES),
        }
    )
    small = len(ids) <= SMALL_CUSTOMERS
    return Rows(
        c=c,
        time=time,
        numbers={
            "amount": amount,
            "flow": flow,
            "balance": small_balances(frame, starts) if small else balances(frame),
        },
        texts=texts,
        flags={"income": small_income_flags(frame) if small else income_flags(frame)},
        starts=starts,
    )


def _order(
    c: np.ndarray, time: np.ndarray, txn_id: pa.ChunkedArray, keep: np.ndarray
) -> np.ndarray:
    """The kept rows by customer, then time; rows at the same time by txn_id (empty last)."""
    if keep.all():  # the usual case: the read took only the asked customers
        order = _arg_sort(c, time)
    else:
        kept = np.flatnonzero(keep)
        order = kept[_arg_sort(c[kept], time[kept])]
    sc, st = c[order], time[order]
    same = (sc[1:] == sc[:-1]) & (st[1:] == st[:-1])  # row i+1 ties with row i
    if not same.any():
        return order
    # Only the tied rows move, within their runs of one (customer, time): each run is
    # sorted by txn_id where it stands.
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    positions = np.flatnonzero(tied)
    run = np.cumsum(np.concatenate(([True], ~same)))[positions]  # run number of each
    ids = pl.Series(pc.take(txn_id, pa.array(order[positions]))).replace("", None)  # "" empty
    runs = pl.DataFrame({"run": run, "id": ids})
    within = runs.select(pl.arg_sort_by("run", "id", nulls_last=True)).to_series().to_numpy()
    order = order.copy()  # polars hands back a read-only view
    order[positions] = order[positions][within]
    return order


def _arg_sort(c: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Row order by (c, time): one int64 key when customer x time span fits in it (a third
    of the two-column sort's time at 15M rows), else both columns."""
    if not len(c):
        return np.zeros(0, dtype=np.int64)
    earliest = int(time.min())
    span = int(time.max()) - earliest + 1
    if (int(c.max()) + 1) * span < 2**62:
        return pl.Series(c * span + (time - earliest)).arg_sort().to_numpy()
    frame = pl.DataFrame({"c": c, "time": time})
    return frame.select(pl.arg_sort_by("c", "time")).to_series().to_numpy()


def _payments(table: pa.Table, ids: pa.Array) -> Rows:
    position = _positions(table, ids)
    table = table.filter(pa.array(position >= 0))
    c = position[position >= 0]
    due = _days(table.column("due_date"))
    order = np.lexsort((due, c))
    table, c, due = table.take(pa.array(order)), c[order], due[order]
    return Rows(
        c=c,
        time=(np.nan_to_num(due) * DAY_US).astype(np.int64),
        numbers={
            "due_day": due,
            "amount_due": _floats(table.column("amount_due")),
            "amount_paid": _floats(table.column("amount_paid")),
            "paid_day": _days(table.column("paid_date")),
        },
        texts={},
        flags={},
        starts=_starts(c, len(ids)),
    )


def payment_fields(
    payments: Rows, customers: Customers, rows: np.ndarray, t: np.ndarray
) -> dict[str, np.ndarray]:
    """Payment fields of ``rows`` as seen at ``t`` (microseconds, one per row): status at t."""
    n = payments.numbers
    t_day = t // DAY_US
    due, amount_due = n["due_day"][rows], n["amount_due"][rows]
    paid_day, amount_paid = n["paid_day"][rows], n["amount_paid"][rows]
    with np.errstate(invalid="ignore"):
        paid = paid_day < t_day  # NaN (no paid date) compares False
    days_late = np.where(paid, np.maximum(0.0, paid_day - due), t_day - due)
    paid_amount = np.where(paid, np.nan_to_num(amount_paid), 0.0)
    limit = customers.numbers["credit_limit"][payments.c[rows]]
    with np.errstate(divide="ignore", invalid="ignore"):
        shortfall = np.where(amount_due > 0, (amount_due - paid_amount) / amount_due, np.nan)
        utilisation = np.where(limit > 0, amount_due / limit, np.nan)
    return {
        "amount_due": amount_due,
        "amount_paid": paid_amount,
        "days_late": days_late,
        "late": days_late > 0,
        "unpaid": ~paid,
        "partial": paid & (paid_amount < amount_due),
        "shortfall": shortfall,
        "utilisation": utilisation,
    }


def condition_mask(
    conditions: tuple[tuple[Condition, ...], ...],
    size: int,
    lookup: Mapping[str, np.ndarray | Text],
) -> np.ndarray:
    """Rows where any alternative's conditions all hold (no conditions: every row). A
    condition on an empty value does not hold."""
    if not conditions:
        return np.ones(size, dtype=bool)
    mask = np.zeros(size, dtype=bool)
    for alternative in conditions:
        holds = np.ones(size, dtype=bool)
        for condition in alternative:
            holds &= _test(condition, lookup[condition.field])
        mask |= holds
    return mask


def _test(condition: Condition, values: np.ndarray | Text) -> np.ndarray:
    op, value = condition.op, condition.value
    if isinstance(values, Text):
        if op in LIST_OPS:
            return values.isin(value) if op == "in" else values.matching(lambda v: v not in value)
        return values.equals(value) if op == "eq" else values.matching(lambda v: v != value)
    # numpy's stubs type a comparison with an untyped value as Any: the masks are declared
    target: npt.NDArray[np.bool_]
    if values.dtype == bool:
        target = np.isin(values, list(value)) if op in LIST_OPS else values == value
        return target if op in ("eq", "in") else ~target
    with np.errstate(invalid="ignore"):
        if op == "eq":
            target = values == value
        elif op == "ne":
            target = ~np.isnan(values) & (values != value)
        elif op == "in":
            target = np.isin(values, list(value))
        elif op == "not_in":
            target = ~np.isnan(values) & ~np.isin(values, list(value))
        else:
            compare = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
            target = compare[op](values, value)
    return target
