"""The latent world: each customer's income, segment, limit and monthly stress.

Times are epoch seconds and dates epoch days; everything is drawn from the caller's
``default_rng``, in a fixed order, so the same seed gives the same world. A regime change
(:func:`shock`) draws from its own stream and changes the stress from its month on only.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import polars as pl

DAY = 86_400  # seconds
FULL, THIN, CARD_ONLY = 0, 1, 2  # segments: everything, a few transactions, statements only
# customers arriving during the period (the rest are there from its first days): enough to
# show "new customers" over time, few enough that most have a full year of observations
LATE_ARRIVAL_SHARE = 0.15
# The economic shock of a regime change (``shock``): everybody's stress rises a little, and a
# sizeable share of customers is hit in one of its first three months by a lasting shock
# (more than a third of them losing their job for a while).
SHOCK_LEVEL = 0.15  # added to everybody's stress from the shift month on
SHOCK_SHARE = 0.3  # customers hit
SHOCK_JOB_LOSS = 0.2  # of those hit, the share whose salary stops for a geometric spell
SHOCK_DECAY = 0.92  # per month: a shock fades slowly (a normal shock by 0.75)


Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class World:
    """Latent per-customer state; times are epoch seconds, dates epoch days."""

    bounds: Ints  # (months + 1,) month boundaries, epoch seconds
    created: Ints  # (n,) epoch seconds
    income: Floats
    salary_day: Ints  # 0 = no salary credit
    segment: Ints  # FULL, THIN or CARD_ONLY
    limit: Floats
    spend: Floats  # personal spending level (multiplier)
    taste: Ints  # (n,) random key choosing the favourite merchants
    stress: Floats  # (n, months + 1); column 0 is the month before the start
    jobless: npt.NDArray[np.bool_]  # (n, months)

    @property
    def end(self) -> int:
        return int(self.bounds[-1])

    def tx_stress(self) -> Floats:
        return np.clip(self.stress[:, 1:], -1.0, 3.5)


@dataclass(frozen=True)
class Shift:
    """A regime change from ``month`` (index in the period) on: the world with the shock's
    stress (identical before ``month``) and the streams the new regime draws from."""

    month: int
    world: World
    payments_rng: np.random.Generator
    transactions_rng: np.random.Generator


def add_months(d: dt.date, k: int) -> dt.date:
    y, m = divmod(d.month - 1 + k, 12)
    return dt.date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def epoch_day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _stress(rng: np.random.Generator, n: int, months: int) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Frailty + AR(1) + shocks (job loss keeps the shock from decaying)."""
    frailty = rng.normal(-0.5, 0.35, n)
    eps = rng.normal(0.0, 0.5, (n, months + 1))
    onset = rng.random((n, months + 1)) < 0.02
    size = rng.gamma(4.0, 0.6, (n, months + 1))
    job = onset & (rng.random((n, months + 1)) < 0.6)
    spell = rng.geometric(0.35, (n, months + 1))
    ar, shock, left = eps[:, 0] / np.sqrt(1 - 0.7**2), np.zeros(n), np.zeros(n, np.int64)
    stress, jobless = np.empty((n, months + 1)), np.zeros((n, months + 1), bool)
    for m in range(months + 1):
        ar = 0.7 * ar + eps[:, m] if m else ar
        left = np.where(job[:, m], spell[:, m], np.maximum(left - 1, 0))
        jobless[:, m] = left > 0
        shock = np.where(jobless[:, m], shock, 0.75 * shock) + onset[:, m] * size[:, m]
        stress[:, m] = frailty + ar + shock
    return stress, jobless[:, 1:]


def draw_world(rng: np.random.Generator, n: int, start: dt.date, months: int) -> World:
    days = [epoch_day(add_months(start, k)) for k in range(months + 1)]
    bounds = np.array(days, dtype=np.int64) * DAY
    late = rng.random(n) < LATE_ARRIVAL_SHARE
    # a late customer arrives at least 30 days before the end: in a one-month period, on the
    # third day (the bounds only ever met there; a longer period draws what it always drew)
    earliest = bounds[0] + 2 * DAY
    created = np.where(
        late,
        rng.uniform(earliest, max(bounds[-1] - 30 * DAY, earliest), n),
        bounds[0] + rng.uniform(0, 2 * DAY, n),
    ).astype(np.int64)
    income = np.exp(rng.normal(np.log(3500), 0.45, n)).round(-1)
    segment = rng.choice(3, n, p=[0.82, 0.10, 0.08])
    has_salary = (segment == FULL) & (rng.random(n) < 0.88)
    salary_day = np.where(has_salary, rng.integers(1, 29, n), 0)
    limit = np.clip(np.round(income * rng.uniform(0.6, 2.5, n), -2), 500, 50_000)
    spend = (income / 3500) ** 0.7 * np.exp(rng.normal(0, 0.25, n))
    taste = rng.integers(0, 2**31, n)
    stress, jobless = _stress(rng, n, months)
    stress += 0.3 * np.log(3500 / income)[:, None]  # poorer customers are more fragile
    return World(bounds, created, income, salary_day, segment, limit, spend, taste, stress, jobless)


def shift_month(start: dt.date, months: int, shift_from: dt.date) -> int:
    """The index of the month of the period holding ``shift_from`` (ValueError outside it)."""
    end = add_months(start, months)
    if not start <= shift_from < end:
        last = end - dt.timedelta(days=1)
        raise ValueError(f"the shift date {shift_from} is outside the period {start} to {last}")
    return bisect.bisect_right([add_months(start, k) for k in range(1, months)], shift_from)


def shock(rng: np.random.Generator, w: World, month: int) -> Shift:
    """The world of a regime change from ``month`` on, drawn from ``rng`` (a stream of its
    own): SHOCK_LEVEL more stress for everybody, and for SHOCK_SHARE of the customers a
    shock starting in one of the first three months of the new regime and fading by
    SHOCK_DECAY a month (SHOCK_JOB_LOSS of them also lose their salary for a while)."""
    world_rng, payments_rng, transactions_rng = rng.spawn(3)
    n, months = len(w.created), len(w.bounds) - 1
    hit = world_rng.random(n) < SHOCK_SHARE
    onset = month + world_rng.integers(0, 3, n)
    size = world_rng.gamma(4.0, 0.45, n)
    job = hit & (world_rng.random(n) < SHOCK_JOB_LOSS)
    spell = world_rng.geometric(0.3, n)
    # stress column c is month c - 1 (column 0: the month before the period)
    since = np.arange(-1, months)[None, :] - onset[:, None]  # months since the onset
    extra = np.where(hit[:, None] & (since >= 0), size[:, None], 0.0)
    extra = extra * SHOCK_DECAY ** np.maximum(since, 0)
    extra += np.where(np.arange(-1, months) >= month, SHOCK_LEVEL, 0.0)[None, :]
    jobless = w.jobless | (job[:, None] & (since[:, 1:] >= 0) & (since[:, 1:] < spell[:, None]))
    world = replace(w, stress=w.stress + extra, jobless=jobless)
    return Shift(month, world, payments_rng, transactions_rng)


def customers_frame(rng: np.random.Generator, w: World, ids: pl.Series) -> pl.DataFrame:
    n = len(ids)
    income = np.where(rng.random(n) < 0.03, np.nan, w.income)
    return pl.DataFrame(
        {
            "customer_id": ids,
            "created_at": pl.from_epoch(pl.Series(w.created), time_unit="s"),
            "monthly_income": pl.Series(income).fill_nan(None),
            "salary_day": pl.Series(w.salary_day, dtype=pl.Int32).replace(0, None),
            "credit_limit": w.limit.astype(np.float64),
        }
    )
