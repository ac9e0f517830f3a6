"""A slow, obviously correct reference for the declared features of ``docs/features.md``.

Written only from that page, in plain Python: one observation at a time, the customer's rows
as dicts, loops. It reads the parsed declarations (``predelinq.features.declarations``:
``FeatureSet``, ``Aggregate``, ``Condition``) and nothing else of ``predelinq.features``;
the two engines are held to it in ``features/test_reference.py`` and
``features/test_point_in_time.py``.

Readings of the page where it leaves room (each repeated where it is used):

* R1 income, "the same counterparty (``merchant_id``; when that is empty, the same
  ``category``)": a credit's counterparty is its ``merchant_id``, or, without one, its
  category; an earlier credit recurs with it when their counterparties are the same (so a
  credit without a merchant matches earlier credits without a merchant of the same category).
* R2 income, "20 to 40 days before it, of an amount between 0.75 and 1/0.75 times this one":
  both ranges include their ends; days are exact (fractional) time differences.
* R3 "empty": a null or NaN number, a null or ``""`` text (``txn_id``, conditions).
* R4 "no row of the source before t": decided per aggregate, on the aggregate's own source
  (an inline ``minus``/``ratio`` of another source is NaN when that source has no row).
* R5 ``last``/``first`` take the latest (earliest) row's value even when it is empty (NaN).
* R6 ``days``/``time_mean`` with ``window = "all"``: the window starts before every row (the
  state starts at the customer's first transaction).
* R7 ``time_mean`` with no time in the window where its state matched: NaN.
* R8 ``days_since_first`` of customers is negative for an observation before ``created_at``.
* R9 statements of one customer sharing a due date have no defined order: ``last``/``first``
  of payments are then undefined, and the tests do not draw such ties.
* R10 amounts are compared as the decimals they are written as (the ratio of 1575.27 to
  2100.36 is exactly 0.75), not as their binary floating-point approximations.

Where one-pass float arithmetic cannot resolve the docs' value, the reference says so
(``unresolved``) instead of asking the engines for digits they cannot compute: a ``slope``
whose points span less than an hour, a ``std`` far below the magnitude of the customer's
values. The comparisons leave those (observation, feature) pairs out;
features/test_reference.py pins what the engines do there.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl

from predelinq.features.declarations import Aggregate, Condition, FeatureSet
from predelinq.features.parse import feature_set

NAN = float("nan")
DAY_US = 86_400_000_000
PERIOD_DAYS = 30
EPOCH = datetime(1970, 1, 1)
USER_FEATURES = Path(__file__).parents[1] / "data" / "user_features.toml"

# Income (docs "Income"): one of a credit's 3 previous credits from its counterparty came
# 20..40 days before it, of an amount 0.75..1/0.75 times its own.
RECUR_LOOKBACK = 3
RECUR_MIN_US, RECUR_MAX_US = 20 * DAY_US, 40 * DAY_US
RECUR_LOW, RECUR_HIGH = Fraction(3, 4), Fraction(4, 3)

# One row of a source, or one derived row (docs "The data each source gives"), by field name.
Row = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# small helpers


def is_empty(value: Any) -> bool:
    """R3: null, NaN, or empty text."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def as_float(value: Any) -> float:
    return NAN if value is None else float(value)


def micros(value: datetime | date) -> int:
    """Microseconds since the epoch (UTC); a date is its midnight."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return (value - EPOCH) // timedelta(microseconds=1)
    return (value - EPOCH.date()).days * DAY_US


def days(us: int) -> float:
    return us / DAY_US


# ---------------------------------------------------------------------------------------------
# the rows each source gives (docs "The data each source gives")


def transaction_rows(rows: list[Row], t: int, categories: Mapping[str, str]) -> list[Row]:
    """The customer's transactions before ``t``, in order (time, then ``txn_id``, empty ids
    last), with the fields of the docs: amount, flow, balance, txn_type, category, channel,
    merchant_id, income."""
    visible = [r for r in rows if micros(r["txn_time"]) < t]

    def order(r: Row) -> tuple[Any, ...]:
        txn_id = r.get("txn_id")
        return (micros(r["txn_time"]), is_empty(txn_id), "" if is_empty(txn_id) else txn_id)

    out: list[Row] = []
    balance = 0.0  # before any given balance: the running sum of flows from the first row
    for r in sorted(visible, key=order):
        amount = float(r["amount"])
        if r["txn_type"] not in ("credit", "debit"):  # the docs define no other
            raise ValueError(f"txn_type {r['txn_type']!r}: the docs know credit and debit")
        flow = amount if r["txn_type"] == "credit" else -amount
        given = r.get("balance_after")
        # a given balance_after is the balance; else the previous balance plus this flow
        balance = float(given) if given is not None and not is_empty(given) else balance + flow
        category = r["category"]
        if category is not None:
            category = categories.get(category, category)
        out.append(
            {
                "time": micros(r["txn_time"]),
                "amount": amount,
                "flow": flow,
                "balance": balance,
                "txn_type": r["txn_type"],
                "category": category,
                "channel": r.get("channel"),
                "merchant_id": r.get("merchant_id"),
            }
        )
    for k, row in enumerate(out):
        row["income"] = is_income(row, out[:k])
    return out


def counterparty(row: Row) -> tuple[Any, ...]:
    """R1: the merchant, or without one the category."""
    if is_empty(row["merchant_id"]):
        return ("category", row["category"])
    return ("merchant", row["merchant_id"])


def is_income(row: Row, earlier: list[Row]) -> bool:
    """Docs "Income": a credit of category salary, or one that recurs: one of the customer's
    three previous credits from the same counterparty (R1) came 20 to 40 days before it, with
    an amount between 0.75 and 1/0.75 times this one (R2). Never a credit of category
    interest."""
    if row["txn_type"] != "credit" or row["category"] == "interest":
        return False
    if row["category"] == "salary":
        return True
    same = [
        other
        for other in earlier  # in row order
        if other["txn_type"] == "credit" and counterparty(other) == counterparty(row)
    ]
    amount = decimal(row["amount"])
    for other in same[-RECUR_LOOKBACK:]:
        gap = row["time"] - other["time"]
        close = RECUR_LOW * amount <= decimal(other["amount"]) <= RECUR_HIGH * amount
        if RECUR_MIN_US <= gap <= RECUR_MAX_US and close:
            return True
    return False


def decimal(amount: float) -> Fraction:
    """R10: the amount as the decimal it was written as (1575.27 is 3/4 of 2100.36)."""
    return Fraction(repr(amount))


def payment_rows(rows: list[Row], t: int, credit_limit: float) -> list[Row]:
    """The customer's statements due before ``t``, ordered by due date, with their status at
    ``t`` (docs "payments (statements)")."""
    t_day = t // DAY_US
    out = []
    for r in sorted(rows, key=lambda r: micros(r["due_date"])):
        due_day = micros(r["due_date"]) // DAY_US
        if due_day >= t_day:  # due on or after t: not a row yet
            continue
        paid_day = None if r["paid_date"] is None else micros(r["paid_date"]) // DAY_US
        paid = paid_day is not None and paid_day < t_day
        amount_due = as_float(r["amount_due"])
        if paid:
            assert paid_day is not None
            amount_paid = 0.0 if is_empty(r["amount_paid"]) else float(r["amount_paid"])
            days_late = float(max(0, paid_day - due_day))
        else:
            amount_paid = 0.0
            days_late = float(t_day - due_day)
        shortfall = NAN if amount_due == 0 else (amount_due - amount_paid) / amount_due
        has_limit = not is_empty(credit_limit) and credit_limit > 0
        out.append(
            {
                "time": due_day * DAY_US,
                "amount_due": amount_due,
                "amount_paid": amount_paid,
                "days_late": days_late,
                "late": days_late > 0,
                "unpaid": not paid,
                "partial": paid and amount_paid < amount_due,
                "shortfall": shortfall,
                "utilisation": amount_due / credit_limit if has_limit else NAN,
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# where (docs "The vocabulary")


def holds(condition: Condition, row: Row) -> bool:
    value = row[condition.field]
    if is_empty(value):  # a condition on an empty value does not hold, ne and not_in too
        return False
    op, want = condition.op, condition.value
    if op == "eq":
        return bool(value == want)
    if op == "ne":
        return bool(value != want)
    if op == "in":
        return bool(value in want)
    if op == "not_in":
        return bool(value not in want)
    if op == "lt":
        return bool(value < want)
    if op == "le":
        return bool(value <= want)
    if op == "gt":
        return bool(value > want)
    if op == "ge":
        return bool(value >= want)
    raise AssertionError(f"unknown operator {op!r}")


def matches(where: tuple[tuple[Condition, ...], ...], row: Row) -> bool:
    """An OR of ANDs; no ``where``: every row."""
    if not where:
        return True
    return any(all(holds(c, row) for c in alternative) for alternative in where)


def number(value: Any) -> float:
    """A field as a number: flags are 1 or 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return as_float(value)


# ---------------------------------------------------------------------------------------------
# aggregations (docs "Aggregations")


def sample_std(values: list[float]) -> float:
    """Sample standard deviation (2+ values), exactly rounded (``statistics`` sums exactly)."""
    return statistics.stdev(values) if len(values) >= 2 else NAN


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of y against time, per day; ``points`` are (time in us, y). NaN
    without 2+ distinct times. Times are taken relative to the first point as exact integers,
    and the sums are two-pass and exactly rounded (``math.fsum``)."""
    if len({x for x, _ in points}) < 2:
        return NAN
    x0 = points[0][0]
    xs = [float(x - x0) for x, _ in points]  # exact: well below 2**53 us
    ys = [y for _, y in points]
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    return sxy / sxx * DAY_US


def state_spans(rows: list[Row], t: int, start: int | None, end: int) -> list[tuple[Row, int]]:
    """Each transaction's state holds from its time until the next transaction (or t); the
    time (us) of that span inside the window ``[start, end)`` (R6: no start = unbounded)."""
    spans = []
    for k, row in enumerate(rows):
        until = rows[k + 1]["time"] if k + 1 < len(rows) else t
        lo = row["time"] if start is None else max(row["time"], start)
        hi = min(until, end)
        spans.append((row, max(0, hi - lo)))
    return spans


def window_of(a: Aggregate, t: int) -> tuple[int | None, int]:
    """``[start, end)`` (us): ``t - offset - window <= time < t - offset``; no start: "all"."""
    end = t - a.offset * DAY_US
    return (None if a.window is None else end - a.window * DAY_US), end


def chosen_rows(a: Aggregate, t: int, rows: list[Row]) -> list[Row]:
    """The rows of the window that match ``where``, in row order."""
    start, end = window_of(a, t)
    return [
        r
        for r in rows
        if (start is None or start <= r["time"]) and r["time"] < end and matches(a.where, r)
    ]


SLOPE_MIN_SPAN_US = 3_600_000_000  # one hour
EPSILON = 2.0**-52


def unresolved(a: Aggregate, t: int, rows: list[Row] | None) -> bool:
    """Float arithmetic cannot give this aggregate's digits (see the module docstring): a
    slope over points less than an hour apart; a std whose one-pass sum of squares, of n
    values up to M from the customer's first value (|v| <= M / 2), may be off by about
    n eps M^2 in the variance -- more than the comparison's tolerance in the std."""
    if a.agg not in ("slope", "std") or not rows:
        return False
    assert a.value is not None, a  # std and slope take a value
    chosen = chosen_rows(a, t, rows)
    points = [(r["time"], number(r[a.value])) for r in chosen]
    points = [(x, y) for x, y in points if not math.isnan(y)]
    if a.agg == "slope":
        times = {x for x, _ in points}
        return len(times) >= 2 and max(times) - min(times) < SLOPE_MIN_SPAN_US
    std = sample_std([y for _, y in points])
    if math.isnan(std):
        return False
    n = len(points)
    spread = 2 * max(abs(v) for v in (number(r[a.value]) for r in rows) if not math.isnan(v))
    if spread == 0:
        return False
    error = n * EPSILON * spread**2 / (std + math.sqrt(n * EPSILON) * spread)
    return error > LOOSE_ATOL + LOOSE_RTOL * std


def aggregate(a: Aggregate, t: int, rows: list[Row] | None, customer: Row | None) -> float:
    """One aggregate of one customer at ``t`` (us): ``rows`` are the source's rows before t
    in order (ignored for customers)."""
    if a.source == "customers":
        if customer is None:  # no customers row
            return NAN
        if a.agg == "days_since_first":
            created = customer["created_at"]
            return NAN if created is None else days(t - micros(created))  # R8
        assert a.agg == "value" and a.value is not None, a
        return as_float(customer[a.value])

    if not rows:  # no row of the source before t (R4)
        return NAN
    start, end = window_of(a, t)

    if a.agg in ("days", "time_mean"):
        spans = [(r, us) for r, us in state_spans(rows, t, start, end) if matches(a.where, r)]
        if a.agg == "days":
            return days(sum(us for _, us in spans))
        assert a.value is not None, a  # time_mean takes a value
        spans = [(r, us) for r, us in spans if us > 0 and not is_empty(r[a.value])]
        total = sum(us for _, us in spans)
        if total == 0:
            return NAN  # R7
        return math.fsum(number(r[a.value]) * us for r, us in spans) / total

    chosen = chosen_rows(a, t, rows)
    values = [] if a.value is None else [number(r[a.value]) for r in chosen]
    present = [v for v in values if not math.isnan(v)]

    if a.agg in ("periods_with", "periods_without", "period_cv"):
        first_time = rows[0]["time"]  # the customer's first row of the source (any, before t)
        assert a.window is not None, a  # the period aggregations always have a window
        with_row, without_row, sums = 0, 0, []
        for k in range(1, a.window // PERIOD_DAYS + 1):
            lo, hi = end - PERIOD_DAYS * k * DAY_US, end - PERIOD_DAYS * (k - 1) * DAY_US
            inside = [r for r in chosen if lo <= r["time"] < hi]
            with_row += bool(inside)
            if lo >= first_time:
                without_row += not inside
                if a.value is not None:
                    inside_values = [number(r[a.value]) for r in inside]
                    sums.append(math.fsum(v for v in inside_values if not math.isnan(v)))
        if a.agg == "periods_with":
            return float(with_row)
        if a.agg == "periods_without":
            return float(without_row)
        if len(sums) < 2:
            return NAN
        mean = math.fsum(sums) / len(sums)
        return NAN if mean == 0 else statistics.pstdev(sums) / mean

    agg = a.agg
    if agg == "count":
        return float(len(chosen))
    if agg == "sum":
        return math.fsum(present)
    if agg == "mean":
        return math.fsum(present) / len(present) if present else NAN
    if agg == "min":
        return min(present) if present else NAN
    if agg == "max":
        return max(present) if present else NAN
    if agg == "std":
        return sample_std(present)
    if agg == "last":
        return values[-1] if values else NAN  # R5
    if agg == "first":
        return values[0] if values else NAN  # R5
    if agg == "slope":
        points = [(r["time"], v) for r, v in zip(chosen, values, strict=True) if not math.isnan(v)]
        return slope(points)
    if agg == "days_since_last":
        return days(t - chosen[-1]["time"]) if chosen else NAN
    if agg == "days_since_first":
        return days(t - chosen[0]["time"]) if chosen else NAN
    if agg == "active_days":
        return float(len({r["time"] // DAY_US for r in chosen}))
    raise AssertionError(f"unknown aggregation {agg!r}")


def log1p_signed(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x) if not math.isnan(x) else NAN


def observation_features(
    features: FeatureSet,
    t: int,
    customer: Row | None,
    transactions: list[Row],
    payments: list[Row],
    unresolved_names: set[str] | None = None,
) -> dict[str, float]:
    """Every feature of one customer at ``t``: ``scale x aggregate``, then ``- minus``, then
    ``/ ratio`` (NaN on a 0 or NaN denominator), then ``transform``. Features that float
    arithmetic cannot resolve (``unresolved``, or built on one) go in ``unresolved_names``."""
    limit = NAN if customer is None else as_float(customer["credit_limit"])
    rows = {
        "transactions": transaction_rows(transactions, t, features.categories),
        "payments": payment_rows(payments, t, limit),
    }

    def compute(a: Aggregate) -> float:
        return aggregate(a, t, rows.get(a.source), customer)

    out: dict[str, float] = {}
    for f in features.features:
        parts = [f.aggregate, *(r for r in (f.minus, f.ratio) if isinstance(r, Aggregate))]
        named = [r for r in (f.minus, f.ratio) if isinstance(r, str)]
        if unresolved_names is not None and (
            any(unresolved(a, t, rows.get(a.source)) for a in parts)
            or any(n in unresolved_names for n in named)
        ):
            unresolved_names.add(f.name)
        x = f.scale * compute(f.aggregate)
        if f.minus is not None:
            x -= out[f.minus] if isinstance(f.minus, str) else compute(f.minus)
        if f.ratio is not None:
            d = out[f.ratio] if isinstance(f.ratio, str) else compute(f.ratio)
            x = NAN if math.isnan(d) or d == 0 else x / d
        if f.transform == "log1p":
            x = log1p_signed(x)
        else:
            assert f.transform is None, f.transform
        out[f.name] = float(x)
    return out


def reference_frame(
    observations: pl.DataFrame,
    inputs: Mapping[str, Any],
    features: FeatureSet,
    unresolved_cells: set[tuple[int, str]] | None = None,
) -> pl.DataFrame:
    """One row per observation, in order: ``customer_id``, ``observation_date``, then every
    feature (Float64, NaN missing) -- the engines' layout. ``unresolved_cells`` receives the
    (row, feature) pairs float arithmetic cannot resolve."""

    def rows_of(name: str) -> list[Row]:
        frame = inputs[name]
        if not isinstance(frame, pl.DataFrame):
            frame = pl.from_arrow(frame)  # an Arrow table: a DataFrame
            assert isinstance(frame, pl.DataFrame), type(frame)
        return frame.to_dicts() if frame.height else []

    customers = {c["customer_id"]: c for c in rows_of("customers")}
    transactions: dict[str, list[Row]] = defaultdict(list)
    for r in rows_of("transactions"):
        transactions[r["customer_id"]].append(r)
    payments: dict[str, list[Row]] = defaultdict(list)
    for r in rows_of("payments"):
        payments[r["customer_id"]].append(r)

    out = []
    for k, (customer_id, observation_date) in enumerate(
        observations.select(
            pl.col("customer_id").cast(pl.String), pl.col("observation_date").cast(pl.Date)
        ).iter_rows()
    ):
        names: set[str] | None = None if unresolved_cells is None else set()
        values = observation_features(
            features,
            micros(observation_date),
            customers.get(customer_id),
            transactions.get(customer_id, []),
            payments.get(customer_id, []),
            names,
        )
        if unresolved_cells is not None and names:
            unresolved_cells.update((k, name) for name in names)
        out.append({"customer_id": customer_id, "observation_date": observation_date, **values})
    return pl.DataFrame(out, schema=output_schema(features), orient="row")


def output_schema(features: FeatureSet) -> dict[str, pl.DataType]:
    return {
        "customer_id": pl.String(),
        "observation_date": pl.Date(),
        **{name: pl.Float64() for name in features.names},
    }


# ---------------------------------------------------------------------------------------------
# the feature sets under test


def user_feature_set(extra: Sequence[Mapping[str, Any]] = ()) -> FeatureSet:
    """The built-in features, then tests/data/user_features.toml's (and ``extra``), read with
    its ``[categories]``."""
    with USER_FEATURES.open("rb") as handle:
        document = tomllib.load(handle)
    return feature_set([*document["features"], *extra], document["categories"])


# ---------------------------------------------------------------------------------------------
# test data: typed frames from rows as dicts, small row factories

CUSTOMER_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String(),
        "created_at": pl.Datetime("us"),
        "monthly_income": pl.Float64(),
        "salary_day": pl.Int64(),
        "credit_limit": pl.Float64(),
    }
)
TRANSACTION_SCHEMA = pl.Schema(
    {
        "txn_id": pl.String(),
        "customer_id": pl.String(),
        "txn_time": pl.Datetime("us"),
        "amount": pl.Float64(),
        "txn_type": pl.String(),
        "category": pl.String(),
        "merchant_id": pl.String(),
        "channel": pl.String(),
        "balance_after": pl.Float64(),
    }
)
PAYMENT_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String(),
        "due_date": pl.Date(),
        "amount_due": pl.Float64(),
        "amount_paid": pl.Float64(),
        "paid_date": pl.Date(),
    }
)
OBSERVATION_SCHEMA = pl.Schema({"customer_id": pl.String(), "observation_date": pl.Date()})


def frames(
    customers: Iterable[Row],
    transactions: Iterable[Row],
    payments: Iterable[Row],
    observations: Iterable[tuple[str, date]],
) -> dict[str, pl.DataFrame]:
    """Rows as dicts -> ``observations`` and the three typed input frames."""
    return {
        "observations": pl.DataFrame(
            [{"customer_id": c, "observation_date": d} for c, d in observations],
            schema=OBSERVATION_SCHEMA,
        ),
        "customers": pl.DataFrame(list(customers), schema=CUSTOMER_SCHEMA),
        "transactions": pl.DataFrame(list(transactions), schema=TRANSACTION_SCHEMA),
        "payments": pl.DataFrame(list(payments), schema=PAYMENT_SCHEMA),
    }


def inputs_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in ("customers", "transactions", "payments")}


def reference_from(
    data: Mapping[str, Any],
    features: FeatureSet,
    unresolved_cells: set[tuple[int, str]] | None = None,
) -> pl.DataFrame:
    return reference_frame(data["observations"], inputs_of(data), features, unresolved_cells)


def customer(
    customer_id: str,
    *,
    created_at: datetime = datetime(2023, 1, 1),
    monthly_income: float | None = 3000.0,
    salary_day: int | None = 25,
    credit_limit: float | None = 5000.0,
) -> Row:
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
    category: str | None = "groceries",
    merchant_id: str | None = "M1",
    channel: str | None = "card",
    *,
    txn_id: str | None = None,
    balance_after: float | None = None,
) -> Row:
    return {
        "txn_id": txn_id,
        "customer_id": customer_id,
        "txn_time": txn_time,
        "amount": amount,
        "txn_type": txn_type,
        "category": category,
        "merchant_id": merchant_id,
        "channel": channel,
        "balance_after": balance_after,
    }


def statement(
    customer_id: str,
    due_date: date,
    amount_due: float = 100.0,
    paid_date: date | None = None,
    amount_paid: float | None = None,
) -> Row:
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


def synthetic_frames(n_customers: int, seed: int) -> dict[str, pl.DataFrame]:
    """``predelinq.synth.generate`` cast to the input contract; observations = its labels."""
    from predelinq.synth import generate

    data = generate(n_customers=n_customers, seed=seed)

    def cast(frame: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
        return frame.select([pl.col(k).cast(v) for k, v in schema.items()])

    return {
        "observations": cast(data.labels, OBSERVATION_SCHEMA),
        "customers": cast(data.customers, CUSTOMER_SCHEMA),
        "transactions": cast(data.transactions, TRANSACTION_SCHEMA),
        "payments": cast(data.payments, PAYMENT_SCHEMA),
    }


# ---------------------------------------------------------------------------------------------
# comparison: NaN equals NaN, a tight tolerance, every disagreement named

RTOL = 1e-9
ATOL = 1e-9
# std and slope: the engines reduce one-pass sums of squares and cross-products (of values
# and times taken from the customer's first row), which lose digits as the spread shrinks
# against the magnitudes; on drawn histories their error reaches ~1e-6 relative (the
# reference is exact to the last digit). 1e-5 still catches any wrong row, window or formula.
LOOSE_AGGS = ("std", "slope")
LOOSE_RTOL = 1e-5
LOOSE_ATOL = 1e-6


def tolerance(features: FeatureSet | None, name: str) -> tuple[float, float]:
    """(rtol, atol) for a feature: tight, looser for features built on a std or slope."""
    if features is None:
        return RTOL, ATOL
    by_name = features.by_name()

    def loose(feature_name: str) -> bool:
        f = by_name[feature_name]
        parts = [f.aggregate, *(r for r in (f.minus, f.ratio) if isinstance(r, Aggregate))]
        named = [r for r in (f.minus, f.ratio) if isinstance(r, str)]
        return any(a.agg in LOOSE_AGGS for a in parts) or any(loose(n) for n in named)

    return (LOOSE_RTOL, LOOSE_ATOL) if name in by_name and loose(name) else (RTOL, ATOL)


def feature_mismatches(
    expected: pl.DataFrame,
    got: pl.DataFrame,
    names: Iterable[str],
    features: FeatureSet | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    limit: int = 5,
    skip: Iterable[tuple[int, str]] = (),
) -> list[str]:
    """Human-readable disagreements (feature, observation, expected, got); NaN equals NaN, a
    null (instead of NaN) is a disagreement. ``|got - expected| <= atol + rtol * |expected|``
    (``tolerance(features, name)`` unless given); (row, feature) pairs in ``skip`` are left
    out."""
    assert got.height == expected.height, (expected.height, got.height)
    assert got.select("customer_id", "observation_date").equals(
        expected.select("customer_id", "observation_date")
    ), "rows do not line up"
    keys = expected.select("customer_id", "observation_date").rows()
    skipped = set(skip)
    out = []
    for name in names:
        rtol_, atol_ = tolerance(features, name)
        rtol_ = rtol_ if rtol is None else rtol
        atol_ = atol_ if atol is None else atol
        assert got.schema[name] == pl.Float64, (name, got.schema[name])
        nulls = got[name].null_count()
        if nulls:
            out.append(f"{name}: {nulls} null values (missing must be NaN)")
        bad = []
        for k, (e, g) in enumerate(zip(expected[name], got[name], strict=True)):
            e = NAN if e is None else e
            g = NAN if g is None else g
            if (math.isnan(e) and math.isnan(g)) or (k, name) in skipped:
                continue
            if not (e == g or abs(g - e) <= atol_ + rtol_ * abs(e)):
                bad.append(k)
        for k in bad[:limit]:
            out.append(
                f"{name} at {keys[k][0]} {keys[k][1]}: expected {expected[name][k]!r}, "
                f"got {got[name][k]!r}"
            )
        if len(bad) > limit:
            out.append(f"{name}: ... {len(bad)} disagreements in all")
    return out


def assert_features_equal(
    expected: pl.DataFrame,
    got: pl.DataFrame,
    names: Iterable[str],
    features: FeatureSet | None = None,
    **options: Any,
) -> None:
    mismatches = feature_mismatches(expected, got, names, features, **options)
    assert not mismatches, "features disagree:\n" + "\n".join(mismatches)
