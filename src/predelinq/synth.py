"""Deterministic synthetic data with a realistic pre-delinquency signal.

Generative story (everything vectorised with numpy, one ``default_rng(seed)``):

* Each customer gets a lognormal income, a salary day, a credit limit tied to income,
  rent/utility bills, a personal spending level and favourite merchants. ~85% exist at
  the start of the period, ~15% arrive uniformly later; nothing happens before
  ``created_at``. ~8% are card-only (statements, no transactions), ~10% are thin.
* A latent monthly stress per customer = persistent frailty + AR(1) noise + rare shocks
  (often a job loss that stops the salary for a few months).
* Transactions in month ``m`` follow the stress of month ``m``: late, smaller or missing
  salary, less dining/entertainment/shopping, more and larger ATM withdrawals, so the
  net flow turns negative.
* Statements (one a month on a customer-specific day) react with a lag: the payment
  behaviour of month ``m`` is driven mostly by the stress of month ``m - 1`` (savings
  absorb the first weeks), giving partial/late payments, then unpaid statements.
  Healthy customers sometimes pay a few days late. Payments dated at or after the end
  of the period are recorded as unpaid (the data is a snapshot at the end).
* Labels are derived from the payments by :func:`derive_labels` (30+ days past due
  within 60 days of a monthly observation date).
* Every transaction carries ``balance_after``: an opening balance (lognormal around a month
  of income, lower under stress, next to nothing for some) plus the running sum of credits
  minus debits, so stressed customers go overdrawn. It draws from its own random stream:
  everything else is what the same seed gave before balances existed.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

DAY = 86_400
CATEGORIES = (
    "salary",
    "rent",
    "utilities",
    "groceries",
    "dining",
    "entertainment",
    "shopping",
    "transfer",
    "cash",
)
CHANNELS = ("card", "atm", "transfer", "online", "branch")
# merchant pool per category (size); salary/transfer have no merchant
_POOLS = {
    "rent": 400,
    "utilities": 12,
    "groceries": 150,
    "dining": 900,
    "entertainment": 250,
    "shopping": 700,
    "cash": 300,
}
# card spend: (category, base monthly count, median amount, stress sensitivity)
_SPEND = (
    ("groceries", 4.0, 45.0, 0.0),
    ("dining", 3.0, 28.0, 0.6),
    ("entertainment", 1.3, 35.0, 0.7),
    ("shopping", 1.7, 60.0, 0.6),
)
_FULL, _THIN, _CARD_ONLY = 0, 1, 2
# customers arriving during the period (the rest are there from its first days): enough to
# show "new customers" over time, few enough that most have a full year of observations
LATE_ARRIVAL_SHARE = 0.15
_CAT = {name: code for code, name in enumerate(CATEGORIES)}
_CH = {name: code for code, name in enumerate(CHANNELS)}


@dataclass(frozen=True)
class SyntheticData:
    customers: pl.DataFrame
    transactions: pl.DataFrame
    payments: pl.DataFrame
    labels: pl.DataFrame


@dataclass(frozen=True)
class _World:
    """Latent per-customer state; times are epoch seconds, dates epoch days."""

    bounds: np.ndarray  # (months + 1,) month boundaries, epoch seconds
    created: np.ndarray  # (n,) epoch seconds
    income: np.ndarray
    salary_day: np.ndarray  # 0 = no salary credit
    segment: np.ndarray
    limit: np.ndarray
    spend: np.ndarray  # personal spending level (multiplier)
    taste: np.ndarray  # (n,) random key choosing the favourite merchants
    stress: np.ndarray  # (n, months + 1); column 0 is the month before the start
    jobless: np.ndarray  # (n, months) bool

    @property
    def end(self) -> int:
        return int(self.bounds[-1])

    def tx_stress(self) -> np.ndarray:
        return np.clip(self.stress[:, 1:], -1.0, 3.5)


def _add_months(d: dt.date, k: int) -> dt.date:
    y, m = divmod(d.month - 1 + k, 12)
    return dt.date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def _epoch_day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _stress(rng: np.random.Generator, n: int, months: int) -> tuple[np.ndarray, np.ndarray]:
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


def _world(rng: np.random.Generator, n: int, start: dt.date, months: int) -> _World:
    bounds = np.array([_epoch_day(_add_months(start, k)) for k in range(months + 1)]) * DAY
    late = rng.random(n) < LATE_ARRIVAL_SHARE
    created = np.where(
        late,
        rng.uniform(bounds[0] + 2 * DAY, bounds[-1] - 30 * DAY, n),
        bounds[0] + rng.uniform(0, 2 * DAY, n),
    ).astype(np.int64)
    income = np.round(np.exp(rng.normal(np.log(3500), 0.45, n)), -1)
    segment = rng.choice(3, n, p=[0.82, 0.10, 0.08])
    has_salary = (segment == _FULL) & (rng.random(n) < 0.88)
    salary_day = np.where(has_salary, rng.integers(1, 29, n), 0)
    limit = np.clip(np.round(income * rng.uniform(0.6, 2.5, n), -2), 500, 50_000)
    spend = (income / 3500) ** 0.7 * np.exp(rng.normal(0, 0.25, n))
    taste = rng.integers(0, 2**31, n)
    stress, jobless = _stress(rng, n, months)
    stress += 0.3 * np.log(3500 / income)[:, None]  # poorer customers are more fragile
    return _World(
        bounds, created, income, salary_day, segment, limit, spend, taste, stress, jobless
    )


def _customers(rng: np.random.Generator, w: _World, ids: pl.Series) -> pl.DataFrame:
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


def _place(rng: np.random.Generator, w: _World, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Expand per (customer, month) counts into events at random times in the month."""
    n, months = counts.shape
    flat = counts.ravel()
    cust = np.repeat(np.arange(n, dtype=np.int32), counts.sum(1))
    month = np.repeat(np.tile(np.arange(months, dtype=np.int32), n), flat)
    length = np.diff(w.bounds)[month]
    t = w.bounds[month] + (rng.random(len(month)) * length).astype(np.int64)
    return cust, month, t


def _block(cust, t, amount, cat: str, credit, merchant, channel) -> dict[str, np.ndarray]:
    """One category's events as columns; scalars are broadcast, merchant -1 = none."""
    k = len(cust)
    return {
        "cust": cust.astype(np.int32),
        "t": t,
        "amount": np.round(amount, 2),
        "cat": np.full(k, _CAT[cat], np.int8),
        "credit": np.broadcast_to(credit, k),
        "merchant": np.broadcast_to(merchant, k),
        "channel": np.broadcast_to(channel, k),
    }


def _merchant(rng: np.random.Generator, w: _World, cat: str, cust: np.ndarray) -> np.ndarray:
    """Merchant code: 75% one of the customer's 3 favourites in the category, else any."""
    offset = sum(v for k, v in _POOLS.items() if _CAT[k] < _CAT[cat])
    pool, k = _POOLS[cat], len(cust)
    fav = (w.taste[cust] + rng.integers(0, 3, k) * 104_729 + _CAT[cat] * 7_919) % pool
    anywhere = rng.integers(0, pool, k)
    return (offset + np.where(rng.random(k) < 0.75, fav, anywhere)).astype(np.int32)


def _income_events(rng: np.random.Generator, w: _World) -> list[dict]:
    """Salary credits (late/smaller under stress, none when jobless) or income transfers."""
    s = w.tx_stress()
    paid = (w.salary_day[:, None] > 0) & ~w.jobless
    cust, month = np.nonzero(paid)
    st = s[cust, month]
    delay = rng.poisson(np.maximum(0.0, 3.0 * (st - 0.5))) + (rng.random(len(cust)) < 0.05)
    t = (
        w.bounds[month]
        + (w.salary_day[cust] - 1 + delay) * DAY
        + rng.integers(2 * 3600, 7 * 3600, len(cust))
    )
    cut = np.where(rng.random(len(cust)) < 1 / (1 + np.exp(-2 * (st - 1.5))), 0.7, 1.0)
    amount = w.income[cust] * np.exp(rng.normal(0, 0.02, len(cust))) * cut
    salary = _block(cust, t, amount, "salary", True, -1, _CH["transfer"])
    rate = np.where((w.salary_day == 0) & (w.segment != _CARD_ONLY), 2.0, 0.0)[:, None]
    rate = rate * np.where(w.segment == _THIN, 0.3, 1.0)[:, None] * ~w.jobless
    c, m, t = _place(rng, w, rng.poisson(rate * np.exp(-0.4 * np.maximum(s, 0))))
    amt = w.income[c] / 2 * np.exp(rng.normal(0, 0.3, len(c)))
    return [salary, _block(c, t, amt, "transfer", True, -1, _CH["transfer"])]


def _bills(rng: np.random.Generator, w: _World) -> list[dict]:
    """Rent (fixed amount, early in the month) and 1-2 utility bills, full segment only."""
    n, months = len(w.created), len(w.bounds) - 1
    full = (w.segment == _FULL)[:, None]
    c, m, _ = _place(rng, w, np.broadcast_to(full, (n, months)).astype(np.int64))
    rent_share = rng.uniform(0.25, 0.4, size=n)
    t = w.bounds[m] + rng.integers(0, 5 * DAY, len(c)) + ((w.tx_stress()[c, m] > 1.5) * 6 * DAY)
    landlord = _merchant(rng, w, "rent", c)
    rent = _block(c, t, w.income[c] * rent_share[c], "rent", False, landlord, _CH["transfer"])
    c, m, t = _place(rng, w, rng.poisson(np.broadcast_to(full * 1.5, (n, months))))
    amt = w.income[c] * 0.025 * np.exp(rng.normal(0, 0.3, len(c)))
    utility = _merchant(rng, w, "utilities", c)
    return [rent, _block(c, t, amt, "utilities", False, utility, _CH["online"])]


def _spending(rng: np.random.Generator, w: _World) -> list[dict]:
    """Card spend at merchants (discretionary cut under stress), transfers, ATM cash."""
    s = w.tx_stress()
    act = np.select([w.segment == _FULL, w.segment == _THIN], [1.0, 0.15], 0.0)[:, None]
    out = []
    for name, base, median, cut in _SPEND:
        c, _, t = _place(rng, w, rng.poisson(act * base * np.exp(-cut * s)))
        amt = median * w.spend[c] * np.exp(rng.normal(0, 0.6, len(c)))
        online = (name in ("shopping", "entertainment")) & (rng.random(len(c)) < 0.35)
        channel = np.where(online, _CH["online"], _CH["card"])
        out.append(_block(c, t, amt, name, False, _merchant(rng, w, name, c), channel))
    c, m, t = _place(rng, w, rng.poisson(act * 0.6 * np.exp(0.3 * np.maximum(s, 0))))
    credit = rng.random(len(c)) < 0.3 + 0.15 * (s[c, m] > 1)
    amt = 40 * w.spend[c] * np.exp(rng.normal(1, 0.8, len(c)))
    channel = np.where(rng.random(len(c)) < 0.9, _CH["transfer"], _CH["branch"])
    out.append(_block(c, t, amt, "transfer", credit, -1, channel))
    c, m, t = _place(rng, w, rng.poisson(act * 0.8 * np.exp(0.5 * s)))
    notes = np.ceil(np.exp(rng.normal(np.log(4 * w.spend[c]) + 0.3 * np.maximum(s[c, m], 0), 0.5)))
    atm = np.where(rng.random(len(c)) < 0.95, _CH["atm"], _CH["branch"])
    out.append(_block(c, t, 20.0 * notes, "cash", False, _merchant(rng, w, "cash", c), atm))
    return out


def _merchant_names() -> pl.Series:
    total = sum(_POOLS.values())
    return pl.select(pl.format("M{}", pl.int_range(total).cast(pl.String).str.zfill(5))).to_series()


def _opening_balances(rng: np.random.Generator, w: _World) -> np.ndarray:
    """Each customer's balance before its first transaction, in cents: lognormal around a
    month of income, less for customers already stressed the month before they arrive, and
    next to nothing for ~15% (living from one salary to the next)."""
    n = len(w.created)
    # the month of arrival m is stress column m + 1: column m is the month before it
    month = np.clip(np.searchsorted(w.bounds, w.created, side="right") - 1, 0, len(w.bounds) - 2)
    before = np.clip(w.stress[np.arange(n), month], -1, 3)
    savings = w.income * np.exp(rng.normal(-0.5, 0.7, n) - before)
    near_zero = rng.random(n) < 0.15
    opening = np.where(near_zero, w.income * rng.uniform(0, 0.05, n), savings)
    return np.round(opening * 100).astype(np.int64)


def _transactions(
    rng: np.random.Generator, w: _World, ids: pl.Series, opening: np.ndarray
) -> pl.DataFrame:
    blocks = _income_events(rng, w) + _bills(rng, w) + _spending(rng, w)
    col = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    keep = (col["t"] >= w.created[col["cust"]]) & (col["t"] < w.end) & (col["amount"] > 0)
    col = {k: v[keep] for k, v in col.items()}
    order = np.argsort(col["cust"].astype(np.int64) << 34 | (col["t"] - w.bounds[0]), kind="stable")
    col = {k: v[order] for k, v in col.items()}
    first = np.concatenate([[0], np.cumsum(np.bincount(col["cust"], minlength=len(ids)))])
    seq = np.arange(len(order)) - first[col["cust"]] + 1
    merchant = pl.Series(col["merchant"]).replace(-1, None)
    # balance after each transaction, in whole cents (exact): the opening balance plus the
    # running sum of credits minus debits in (txn_time, then txn order) order, per customer
    flow = np.round(col["amount"] * 100).astype(np.int64) * np.where(col["credit"], 1, -1)
    running = np.concatenate([[0], np.cumsum(flow)])
    balance = opening[col["cust"]] + running[1:] - running[first[col["cust"]]]
    frame = pl.DataFrame(
        {
            "customer_id": ids.gather(col["cust"]),
            "seq": seq,
            "txn_time": pl.from_epoch(pl.Series(col["t"]), time_unit="s"),
            "amount": col["amount"],
            "txn_type": pl.Series(["debit", "credit"]).gather(col["credit"].astype(np.int8)),
            "category": pl.Series(CATEGORIES).gather(col["cat"]),
            "merchant_id": _merchant_names().gather(merchant),
            "channel": pl.Series(CHANNELS).gather(col["channel"]),
            "balance_after": balance / 100,
        }
    )
    txn_id = pl.format("{}-T{}", "customer_id", "seq").alias("txn_id")
    return frame.select(txn_id, pl.exclude("seq"))


def _payment_outcome(rng: np.random.Generator, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days paid after due (NaN = never) and paid share of the amount due, per statement."""
    k = len(z)
    u, frac = rng.random(k), rng.uniform(0.05, 0.8, k)
    grade = np.searchsorted([0.55, 0.9, 1.25], z)  # 0 ok, 1 late, 2 very late, 3 default
    days = np.select(
        [grade == 0, grade == 1, grade == 2],
        [
            np.where(u < 0.05, rng.integers(1, 7, k), -rng.integers(0, 12, k)),
            rng.integers(0, 15, k),
            rng.integers(8, 30, k),
        ],
        np.where(u < 0.25, np.nan, rng.integers(31, 60, k)),
    )
    partial = rng.random(k) < np.array([0.0, 0.4, 0.6, 0.5])[grade]
    return days, np.where(partial, frac, 1.0)


def _payments(rng: np.random.Generator, w: _World, ids: pl.Series) -> pl.DataFrame:
    n = len(ids)
    due_off = rng.integers(0, 28, size=n)
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
    days, share = _payment_outcome(rng, z)
    paid = due + days
    unpaid = np.isnan(days) | (paid >= w.end // DAY)
    paid_amt = np.maximum(np.round(amount_due * share, 2), 0.01)
    return pl.DataFrame(
        {
            "customer_id": ids.gather(cust),
            "due_date": pl.Series(due.astype(np.int32)).cast(pl.Date),
            "amount_due": amount_due,
            "amount_paid": pl.Series(np.where(unpaid, np.nan, paid_amt)).fill_nan(None),
            "paid_date": pl.Series(np.where(unpaid, 0, paid).astype(np.int32)).cast(pl.Date),
        }
    ).with_columns(pl.when(pl.col("amount_paid").is_not_null()).then("paid_date"))


def _observations(w: _World, ids: pl.Series, start: dt.date, months: int) -> pl.DataFrame:
    """Candidate observation dates: 1st of each month, 90 days of history, 60-day window."""
    end = _epoch_day(_add_months(start, months))
    firsts = [_add_months(start.replace(day=1), k) for k in range(months + 1)]
    obs = np.array([_epoch_day(d) for d in firsts if d >= start and _epoch_day(d) + 60 <= end])
    ok = obs[None, :] >= (w.created // DAY + 90)[:, None]
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
    d30 = pl.col("due_date") + pl.duration(days=30)
    bad = payments.lazy().filter(pl.col("paid_date").is_null() | (pl.col("paid_date") > d30))
    bad = bad.select("customer_id", "paid_date", d30.alias("d30"))
    t = pl.col("observation_date")
    excluded = (pl.col("d30") < t) & (pl.col("paid_date").is_null() | (pl.col("paid_date") >= t))
    window = (pl.col("d30") >= t) & (pl.col("d30") < t + pl.duration(days=60))
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


def generate(
    *, n_customers: int, seed: int = 0, start: dt.date = dt.date(2024, 1, 1), months: int = 12
) -> SyntheticData:
    """Generate ``n_customers`` customers over ``months`` months from ``start`` (deterministic)."""
    if n_customers < 1 or months < 1 or seed < 0:
        raise ValueError("n_customers and months must be >= 1 and seed >= 0")
    rng = np.random.default_rng(seed)
    ids = pl.select(
        pl.format("C{}-{}", pl.lit(seed), pl.int_range(n_customers).cast(pl.String).str.zfill(6))
    ).to_series()
    # the opening balances draw from their own stream, so every other value is what it was
    # before transactions carried a balance
    balance_rng = rng.spawn(1)[0]
    w = _world(rng, n_customers, start, months)
    payments = _payments(rng, w, ids)
    return SyntheticData(
        customers=_customers(rng, w, ids),
        transactions=_transactions(rng, w, ids, _opening_balances(balance_rng, w)),
        payments=payments,
        labels=derive_labels(payments, _observations(w, ids, start, months)),
    )


def write(data: SyntheticData, out_dir: Path, *, file_format: str = "csv") -> dict[str, Path]:
    """Write the four tables as ``<name>.csv`` or ``<name>.parquet``; return name -> path."""
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("customers", "transactions", "payments", "labels"):
        frame: pl.DataFrame = getattr(data, name)
        paths[name] = out_dir / f"{name}.{file_format}"
        if file_format == "csv":
            frame.write_csv(
                paths[name], datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d"
            )
        else:
            frame.write_parquet(paths[name])
    return paths
