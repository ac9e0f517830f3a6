"""Statements and their payments, candidate observation dates, and the label rule.

Payments react to the stress of the month before (savings absorb the first weeks), paid with
the ``BEFORE`` habits, or after a regime change the ``AFTER`` ones; the labels are derived
from the payments alone by :func:`derive_labels`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from predelinq.synth.world import DAY, Shift, World, add_months, epoch_day

# The label rule (``derive_labels``): a statement defaults when it is DEFAULT_DAYS past due,
# and an observation is labelled 1 when one defaults in the HORIZON_DAYS from its date.
# Observations are made only for customers with HISTORY_DAYS of history.
DEFAULT_DAYS = 30
HORIZON_DAYS = 60
HISTORY_DAYS = 90


@dataclass(frozen=True)
class Habits:
    """How customers in good standing pay their statements."""

    late_share: float  # share of their statements paid 1 to late_days days late
    late_days: int
    partial_share: float  # share of their statements paid in part


BEFORE = Habits(late_share=0.05, late_days=6, partial_share=0.0)
# After a shift juggling bills is common: customers in good standing often pay late or in
# part, so a statement unpaid some days after its due date, or paid in part, no longer
# singles out a customer under stress.
AFTER = Habits(late_share=0.5, late_days=25, partial_share=0.4)


def _payment_outcome(
    rng: np.random.Generator, z: np.ndarray, habits: Habits
) -> tuple[np.ndarray, np.ndarray]:
    """Days paid after due (NaN = never) and paid share of the amount due, per statement."""
    k = len(z)
    u, frac = rng.random(k), rng.uniform(0.05, 0.8, k)
    grade = np.searchsorted([0.55, 0.9, 1.25], z)  # 0 ok, 1 late, 2 very late, 3 default
    days = np.select(
        [grade == 0, grade == 1, grade == 2],
        [
            np.where(
                u < habits.late_share,
                rng.integers(1, habits.late_days + 1, k),
                -rng.integers(0, 12, k),
            ),
            rng.integers(0, 15, k),
            rng.integers(8, 30, k),
        ],
        np.where(u < 0.25, np.nan, rng.integers(31, 60, k)),
    )
    partial = rng.random(k) < np.array([habits.partial_share, 0.4, 0.6, 0.5])[grade]
    return days, np.where(partial, frac, 1.0)


def _statements(
    rng: np.random.Generator,
    w: World,
    due_off: np.ndarray,
    habits: Habits,
) -> dict[str, np.ndarray]:
    """Each customer's monthly statements on day ``due_off`` of each month, from 30 days
    after arrival: amount due and when (NaN: never) and how much was paid."""
    n = len(due_off)
    due = (w.bounds[:-1][None, :] // DAY) + due_off[:, None]
    cust, month = np.nonzero(due >= (w.created // DAY + 30)[:, None])
    due = due[cust, month]
    z = (
        0.75 * w.stress[cust, month]
        + 0.25 * w.stress[cust, month + 1]
        + rng.normal(0, 0.9, len(cust))
    )
    util = np.clip(
        np.exp(rng.normal(-1.2, 0.5, n))[cust]
        * np.exp(0.3 * np.clip(z, -1, 3) + rng.normal(0, 0.2, len(cust))),
        0.01,
        1,
    )
    amount_due = np.maximum(np.round(w.limit[cust] * util, 2), 20.0)
    days, share = _payment_outcome(rng, z, habits)
    paid_amt = np.maximum(np.round(amount_due * share, 2), 0.01)
    return {
        "cust": cust,
        "month": month,
        "due": due,
        "amount_due": amount_due,
        "days": days,
        "paid_amt": paid_amt,
    }


def payments_frame(
    rng: np.random.Generator, w: World, ids: pl.Series, shift: Shift | None = None
) -> pl.DataFrame:
    """The statements; with a ``shift``, those due from its month on are drawn again from the
    shocked world, on the same days of the month, paid with the ``AFTER`` habits."""
    due_off = rng.integers(0, 28, size=len(ids))
    s = _statements(rng, w, due_off, BEFORE)
    if shift is not None:
        after = _statements(shift.payments_rng, shift.world, due_off, AFTER)
        kept, new = s["month"] < shift.month, after["month"] >= shift.month
        s = {k: np.concatenate([s[k][kept], after[k][new]]) for k in s}
        order = np.argsort(s["cust"] * len(w.bounds) + s["month"], kind="stable")
        s = {k: v[order] for k, v in s.items()}
    paid = s["due"] + s["days"]
    unpaid = np.isnan(s["days"]) | (paid >= w.end // DAY)
    return pl.DataFrame(
        {
            "customer_id": ids.gather(s["cust"]),
            "due_date": pl.Series(s["due"].astype(np.int32)).cast(pl.Date),
            "amount_due": s["amount_due"],
            "amount_paid": pl.Series(np.where(unpaid, np.nan, s["paid_amt"])).fill_nan(None),
            "paid_date": pl.Series(np.where(unpaid, 0, paid).astype(np.int32)).cast(pl.Date),
        }
    ).with_columns(pl.when(pl.col("amount_paid").is_not_null()).then("paid_date"))


def observation_candidates(w: World, ids: pl.Series, start: dt.date, months: int) -> pl.DataFrame:
    """Candidate observation dates: the 1st of each month with HORIZON_DAYS after it in the
    period, for customers with HISTORY_DAYS of history by then."""
    end = epoch_day(add_months(start, months))
    firsts = [add_months(start.replace(day=1), k) for k in range(months + 1)]
    obs = np.array(
        [epoch_day(d) for d in firsts if d >= start and epoch_day(d) + HORIZON_DAYS <= end]
    )
    ok = obs[None, :] >= (w.created // DAY + HISTORY_DAYS)[:, None]
    cust, k = np.nonzero(ok)
    return pl.DataFrame(
        {
            "customer_id": ids.gather(cust),
            "observation_date": pl.Series(obs[k].astype(np.int32)).cast(pl.Date),
        }
    )


def derive_labels(payments: pl.DataFrame, observations: pl.DataFrame) -> pl.DataFrame:
    """Label candidate observations from the payments (pure, vectorised).

    A statement *defaults* (becomes 30+ days past due) at ``d30 = due_date + 30 days`` if
    it is not paid by then: ``paid_date`` is null or ``paid_date > d30``. A partial payment
    made by ``d30`` counts as paid.

    * An observation (``customer_id``, ``observation_date`` = t) is dropped when the
      customer is already 30+ dpd at t: some statement has ``d30 < t``, was not paid by
      ``d30`` and is still unpaid at t (``paid_date`` null or ``paid_date >= t``).
    * ``label = 1`` when some statement defaults with ``t <= d30 < t + 60 days``;
      ``days_to_default`` = days from t to the earliest such ``d30``. Otherwise label 0
      and ``days_to_default`` null.

    ``observations`` holds candidate ``customer_id, observation_date`` pairs (other columns
    are ignored). Returns ``customer_id, observation_date, label, days_to_default`` (Int32)
    sorted by key.
    """
    d30 = pl.col("due_date") + pl.duration(days=DEFAULT_DAYS)
    bad = payments.lazy().filter(pl.col("paid_date").is_null() | (pl.col("paid_date") > d30))
    bad = bad.select("customer_id", "paid_date", d30.alias("d30"))
    t = pl.col("observation_date")
    excluded = (pl.col("d30") < t) & (pl.col("paid_date").is_null() | (pl.col("paid_date") >= t))
    window = (pl.col("d30") >= t) & (pl.col("d30") < t + pl.duration(days=HORIZON_DAYS))
    keys = observations.lazy().select("customer_id", "observation_date")
    hits = (
        keys.join(bad, on="customer_id")
        .group_by("customer_id", "observation_date")
        .agg(excluded.any().alias("excluded"), pl.col("d30").filter(window).min())
    )
    return (
        keys.join(hits, on=["customer_id", "observation_date"], how="left")
        .filter(~pl.col("excluded").fill_null(False))
        .select(
            "customer_id",
            "observation_date",
            pl.col("d30").is_not_null().cast(pl.Int32).alias("label"),
            (pl.col("d30") - t).dt.total_days().cast(pl.Int32).alias("days_to_default"),
        )
        .sort("customer_id", "observation_date")
        .collect()
    )
