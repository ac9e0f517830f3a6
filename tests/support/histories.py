"""Drawn histories for the point-in-time properties, and the two feature engines laid out as
the reference: shared by ``features/test_point_in_time.py`` and ``features/test_reference.py``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import note
from hypothesis import strategies as st

from predelinq.features import FeatureSet
from predelinq.features.historical import features_for_observations
from predelinq.features.online import features_at_date
from support.reference_features import (
    Row,
    frames,
    inputs_of,
    user_feature_set,
)

FEATURES = user_feature_set()
OBS = date(2024, 7, 1)
T = datetime(2024, 7, 1)
EARLY = OBS - timedelta(days=45)
# A and B have a customers row, C only transactions and statements
CUSTOMERS = ("A", "B")
EVERYONE = ("A", "B", "C")
OBSERVATIONS = [("A", OBS), ("B", OBS), ("C", OBS), ("A", EARLY), ("B", EARLY)]
US = timedelta(microseconds=1)
# examples per property (times FEATURE_EXAMPLES_SCALE, e.g. 20 for a long local hunt)
SCALE = float(os.environ.get("FEATURE_EXAMPLES_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, round(n * SCALE))


# ---------------------------------------------------------------------------------------------
# the engines, laid out as the reference: one row per observation, in order


def historical(data: Mapping[str, Any], features: FeatureSet) -> pl.DataFrame:
    return features_for_observations(data["observations"], inputs_of(data), features)


def online(data: Mapping[str, Any], features: FeatureSet) -> pl.DataFrame:
    """``features_at_date``, one call per observation date, rows put back in order."""
    observations = data["observations"].with_row_index("row")
    if observations.height == 0:
        return historical(data, features)  # nothing to ask for; the same empty layout
    parts = [
        features_at_date(
            group["customer_id"].to_list(), day, inputs_of(data), features
        ).with_columns(row=group["row"])
        for (day,), group in observations.group_by("observation_date", maintain_order=True)
    ]
    return pl.concat(parts).sort("row").drop("row")


ENGINES: dict[str, Callable[[Mapping[str, Any], FeatureSet], pl.DataFrame]] = {
    "historical": historical,
    "online": online,
}

# ---------------------------------------------------------------------------------------------
# strategies

CATEGORIES = (
    "salary", "rent", "utilities", "loan", "fees", "penalty_interest", "returned_payment",
    "cash", "interest", "groceries", "dining", "entertainment", "shopping", "transfer",
    "SANKC. UROK", "POPLATEK", "UVER", "VYPLATA", None,
)  # fmt: skip
# exact window and period edges, and income's 20 and 40 days, before either observation date
EDGE_DAYS = tuple(
    sorted(
        {d + shift for d in (7, 20, 30, 40, 60, 90, 120, 150, 180, 210, 360) for shift in (0, 45)}
    )
)

amounts = st.one_of(
    st.integers(1, 500_000).map(lambda cents: cents / 100),
    st.sampled_from([100.0, 750.0, 1000.0, 1333.0, 1500.0]),
)


def before(anchor: datetime, max_days: int = 420) -> st.SearchStrategy[datetime]:
    """A time before ``anchor``: anywhere, or on a window edge (exactly, or 1 us either side)."""
    return st.one_of(
        st.builds(
            lambda d, s: anchor - timedelta(days=d, seconds=s) - US,
            st.integers(0, max_days),
            st.integers(0, 86_399),
        ),
        st.builds(
            lambda d, jitter: anchor - timedelta(days=d) + jitter,
            st.sampled_from(EDGE_DAYS),
            st.sampled_from([timedelta(0), US, -US]),
        ),
        st.sampled_from([anchor - US, T - timedelta(days=3), datetime(2024, 6, 10, 12)]),
    )


def after(anchor: datetime) -> st.SearchStrategy[datetime]:
    """``anchor`` itself, or a time after it."""
    return st.one_of(
        st.just(anchor),
        st.integers(0, 90 * 86_400 * 1_000_000).map(lambda us: anchor + timedelta(microseconds=us)),
    )


@st.composite
def transaction(
    draw: st.DrawFn, when: st.SearchStrategy[datetime], who: tuple[str, ...] = EVERYONE
) -> Row:
    return {
        "txn_id": None,  # assigned by with_ids
        "customer_id": draw(st.sampled_from(who)),
        "txn_time": draw(when),
        "amount": draw(amounts),
        "txn_type": draw(st.sampled_from(["debit", "debit", "credit"])),
        "category": draw(st.sampled_from(CATEGORIES)),
        "merchant_id": draw(st.sampled_from([None, "M1", "M2", "EMPLOYER"])),
        "channel": draw(st.sampled_from([None, "card", "atm", "transfer"])),
        "balance_after": draw(
            st.one_of(st.none(), st.none(), st.integers(-300_000, 500_000).map(lambda c: c / 100))
        ),
    }


@st.composite
def income_series(draw: st.DrawFn) -> list[Row]:
    """Credits of one counterparty about monthly (20..40 days apart, or just outside), of
    similar amounts (within 0.75..1/0.75, or just outside)."""
    who = draw(st.sampled_from(EVERYONE))
    merchant = draw(st.sampled_from([None, "EMPLOYER", "M1"]))
    category = draw(st.sampled_from(["transfer", "interest", "VYPLATA", None]))
    time = draw(before(T, 400))
    amount = draw(st.sampled_from([1000.0, 2500.0, 3000.5]))
    out = []
    for _ in range(draw(st.integers(2, 7))):
        out.append(
            {
                "txn_id": None,
                "customer_id": who,
                "txn_time": time,
                "amount": amount,
                "txn_type": "credit",
                "category": category,
                "merchant_id": merchant,
                "channel": "transfer",
                "balance_after": None,
            }
        )
        gap = draw(st.sampled_from([10, 19, 20, 25, 30, 31, 35, 40, 41]))
        time += timedelta(days=gap) + draw(st.sampled_from([timedelta(0), US, timedelta(hours=5)]))
        # near 0.75 and 1/0.75 on either side, never on them: an amount exactly 0.75 times
        # another is test_an_amount_exactly_three_quarters_of_the_next_recurs's
        amount = round(amount * draw(st.sampled_from([1.0, 0.9, 0.76, 0.74, 1.32, 1.35])), 2)
    return out


@st.composite
def with_ids(draw: st.DrawFn, rows: list[Row]) -> list[Row]:
    """Distinct ``txn_id``s in an order unrelated to the rows' (so same-time ties are ordered
    by id, not by input order); some empty, at most one empty id among rows at one time."""
    numbers = draw(st.permutations(range(len(rows))))
    out, empty_at = [], set()
    for row, k in zip(rows, numbers, strict=True):
        key = (row["customer_id"], row["txn_time"])
        empty = draw(st.sampled_from([None, "x", "x"])) if key not in empty_at else "x"
        if empty != "x":
            empty_at.add(key)
        out.append({**row, "txn_id": empty if empty != "x" else f"T{k}"})  # T10 < T2: text
    return out


@st.composite
def customer_row(draw: st.DrawFn, customer_id: str) -> Row:
    return {
        "customer_id": customer_id,
        "created_at": draw(
            st.sampled_from([None, *(T - timedelta(days=d) for d in (400, 50, 10, -3))])
        ),
        "monthly_income": draw(st.sampled_from([None, 0.0, 2500.0, 3000.0])),
        "salary_day": draw(st.sampled_from([None, 1, 15, 28])),
        "credit_limit": draw(st.sampled_from([None, 0.0, 5000.0])),
    }


@st.composite
def statement_row(draw: st.DrawFn, customer_id: str, due: date) -> Row:
    amount_due = draw(st.sampled_from([0.0, 50.0, 120.5, 300.0, None]))
    paid = draw(st.one_of(st.none(), st.integers(-5, 60)))
    if paid is None:
        amount_paid = draw(st.sampled_from([None, None, 0.0]))
        paid_date = None
    else:
        amount_paid = draw(st.sampled_from([None, 0.0, 20.0, amount_due]))
        paid_date = due + timedelta(days=paid)
    return {
        "customer_id": customer_id,
        "due_date": due,
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "paid_date": paid_date,
    }


@st.composite
def statements(draw: st.DrawFn, days_from_obs: st.SearchStrategy[int]) -> list[Row]:
    """Statements of each customer on distinct due dates (R9: ties have no order)."""
    out = []
    for who in EVERYONE:
        offsets = draw(st.lists(days_from_obs, max_size=5, unique=True))
        out += [draw(statement_row(who, OBS + timedelta(days=d))) for d in offsets]
    return out


past_due = st.one_of(st.integers(-420, -1), st.sampled_from([-d for d in EDGE_DAYS]))


@st.composite
def histories(draw: st.DrawFn, *, future: bool = False) -> dict[str, list[Row]]:
    """Customers A and B (C has no customers row), transactions and statements before T (and
    with ``future``, some on or after it too)."""
    rows = draw(st.lists(transaction(before(T)), max_size=25))
    for series in draw(st.lists(income_series(), max_size=2)):
        rows += series
    if future:
        rows += draw(st.lists(transaction(after(T)), max_size=4))
    days_from_obs = st.one_of(past_due, st.integers(0, 40)) if future else past_due
    return {
        "customers": [draw(customer_row(c)) for c in CUSTOMERS],
        "transactions": draw(with_ids(rows)),
        "payments": draw(statements(days_from_obs)),
    }


def note_history(label: str, history: Mapping[str, list[Row]]) -> None:
    """Print the drawn rows on failure, one per line (hypothesis shows them after the error)."""
    lines = [f"{label}:"]
    for source in ("customers", "transactions", "payments"):
        lines += [f"  {source}: {row!r}" for row in history[source]]
    note("\n".join(lines))


def data_of(
    history: Mapping[str, list[Row]],
    observations: Iterable[tuple[str, date]] = OBSERVATIONS,
) -> dict[str, pl.DataFrame]:
    return frames(history["customers"], history["transactions"], history["payments"], observations)
