"""Transactions: salary and income, bills, card spend, transfers and cash, with balances.

Each category's events are drawn per (customer, month) from the stress of that month and
placed at random times in it; the running balance is exact in whole cents. A ``Regime``
says how stress shows: ``BEFORE`` (always, up to a shift) or ``AFTER`` (a regime change).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from predelinq.ingest.contract import CREDIT, DEBIT
from predelinq.synth.world import CARD_ONLY, DAY, FULL, THIN, Shift, World

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
    # only after a regime change (``AFTER``): bank fees, and direct debits coming back unpaid
    "fees",
    "returned_payment",
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
    "fees": 1,  # the bank itself (a returned payment names the utility it was due to)
}
# card spend: (category, base monthly count, median amount, stress sensitivity)
_SPEND = (
    ("groceries", 4.0, 45.0, 0.0),
    ("dining", 3.0, 28.0, 0.6),
    ("entertainment", 1.3, 35.0, 0.7),
    ("shopping", 1.7, 60.0, 0.6),
)
_CAT = {name: code for code, name in enumerate(CATEGORIES)}
_CH = {name: code for code, name in enumerate(CHANNELS)}
Columns = dict[str, np.ndarray]  # one block of events: cust, month, t, amount, cat, ...


@dataclass(frozen=True)
class Regime:
    """How a month's stress shows in the transactions (stress ``s``, see ``World``)."""

    salary_delay: float  # salary days late: Poisson(salary_delay * (s - 0.5))
    short_time: float  # salary * exp(-short_time * (s - 0.3)) above s = 0.3 (hours cut)
    discretionary: float  # dining, entertainment, shopping: level for everybody
    discretionary_stress: float  # ... times each category's stress sensitivity
    cash_level: float  # ATM withdrawals a month at s = 0
    cash_stress: float  # ... times exp(cash_stress * s)
    cash_size_stress: float  # notes withdrawn grow by exp(cash_size_stress * s) for s > 0
    fees: float  # bank fees a month: Poisson(fees * (s - 0.3)); 0 = none
    returned: float  # returned direct debits a month: Poisson(returned * (s - 0.8))


# Before a shift: late salary, less discretionary spend, more and larger ATM withdrawals.
BEFORE = Regime(
    salary_delay=3.0,
    short_time=0.0,
    discretionary=1.0,
    discretionary_stress=1.0,
    cash_level=0.8,
    cash_stress=0.5,
    cash_size_stress=0.3,
    fees=0.0,
    returned=0.0,
)
# After it: salaries come on time but smaller (short time); everybody cuts discretionary
# spend and draws twice the cash, and neither follows stress as it did (those under stress
# now draw less cash: there is less to draw); stress shows as bank fees and returned direct
# debits instead.
AFTER = Regime(
    salary_delay=0.0,
    short_time=0.35,
    discretionary=0.6,
    discretionary_stress=0.2,
    cash_level=1.6,
    cash_stress=-0.3,
    cash_size_stress=0.0,
    fees=1.2,
    returned=0.6,
)


def _place(
    rng: np.random.Generator, w: World, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand per (customer, month) counts into events at random times in the month."""
    n, months = counts.shape
    flat = counts.ravel()
    cust = np.repeat(np.arange(n, dtype=np.int32), counts.sum(1))
    month = np.repeat(np.tile(np.arange(months, dtype=np.int32), n), flat)
    length = np.diff(w.bounds)[month]
    t = w.bounds[month] + (rng.random(len(month)) * length).astype(np.int64)
    return cust, month, t


def _block(
    cust: np.ndarray,
    month: np.ndarray,
    t: np.ndarray,
    amount: np.ndarray,
    cat: str,
    credit: bool | np.ndarray,
    merchant: int | np.ndarray,
    channel: int | np.ndarray,
) -> Columns:
    """One category's events as columns; scalars are broadcast, merchant -1 = none."""
    k = len(cust)
    return {
        "cust": cust.astype(np.int32),
        "month": month.astype(np.int32),
        "t": t,
        "amount": np.round(amount, 2),
        "cat": np.full(k, _CAT[cat], np.int8),
        "credit": np.broadcast_to(credit, k),
        "merchant": np.broadcast_to(merchant, k),
        "channel": np.broadcast_to(channel, k),
    }


def _merchant(rng: np.random.Generator, w: World, cat: str, cust: np.ndarray) -> np.ndarray:
    """Merchant code: 75% one of the customer's 3 favourites in the category, else any."""
    offset = sum(v for k, v in _POOLS.items() if _CAT[k] < _CAT[cat])
    pool, k = _POOLS[cat], len(cust)
    fav = (w.taste[cust] + rng.integers(0, 3, k) * 104_729 + _CAT[cat] * 7_919) % pool
    anywhere = rng.integers(0, pool, k)
    return (offset + np.where(rng.random(k) < 0.75, fav, anywhere)).astype(np.int32)


def _income_events(rng: np.random.Generator, w: World, regime: Regime) -> list[Columns]:
    """Salary credits (late/smaller under stress, none when jobless) or income transfers."""
    s = w.tx_stress()
    paid = (w.salary_day[:, None] > 0) & ~w.jobless
    cust, month = np.nonzero(paid)
    st = s[cust, month]
    delay = rng.poisson(np.maximum(0.0, regime.salary_delay * (st - 0.5))) + (
        rng.random(len(cust)) < 0.05
    )
    t = (
        w.bounds[month]
        + (w.salary_day[cust] - 1 + delay) * DAY
        + rng.integers(2 * 3600, 7 * 3600, len(cust))
    )
    cut = np.where(rng.random(len(cust)) < 1 / (1 + np.exp(-2 * (st - 1.5))), 0.7, 1.0)
    amount = w.income[cust] * np.exp(rng.normal(0, 0.02, len(cust))) * cut
    if regime.short_time:
        amount = amount * np.exp(-regime.short_time * np.maximum(st - 0.3, 0.0))
    salary = _block(cust, month, t, amount, "salary", True, -1, _CH["transfer"])
    rate = np.where((w.salary_day == 0) & (w.segment != CARD_ONLY), 2.0, 0.0)[:, None]
    rate = rate * np.where(w.segment == THIN, 0.3, 1.0)[:, None] * ~w.jobless
    c, m, t = _place(rng, w, rng.poisson(rate * np.exp(-0.4 * np.maximum(s, 0))))
    amt = w.income[c] / 2 * np.exp(rng.normal(0, 0.3, len(c)))
    return [salary, _block(c, m, t, amt, "transfer", True, -1, _CH["transfer"])]


def _bills(rng: np.random.Generator, w: World) -> list[Columns]:
    """Rent (fixed amount, early in the month) and 1-2 utility bills, full segment only."""
    n, months = len(w.created), len(w.bounds) - 1
    full = (w.segment == FULL)[:, None]
    c, m, _ = _place(rng, w, np.broadcast_to(full, (n, months)).astype(np.int64))
    rent_share = rng.uniform(0.25, 0.4, size=n)
    t = w.bounds[m] + rng.integers(0, 5 * DAY, len(c)) + ((w.tx_stress()[c, m] > 1.5) * 6 * DAY)
    landlord = _merchant(rng, w, "rent", c)
    rent = _block(c, m, t, w.income[c] * rent_share[c], "rent", False, landlord, _CH["transfer"])
    c, m, t = _place(rng, w, rng.poisson(np.broadcast_to(full * 1.5, (n, months))))
    amt = w.income[c] * 0.025 * np.exp(rng.normal(0, 0.3, len(c)))
    utility = _merchant(rng, w, "utilities", c)
    return [rent, _block(c, m, t, amt, "utilities", False, utility, _CH["online"])]


def _spending(rng: np.random.Generator, w: World, regime: Regime) -> list[Columns]:
    """Card spend at merchants (discretionary cut under stress), transfers, ATM cash."""
    s = w.tx_stress()
    act = np.select([w.segment == FULL, w.segment == THIN], [1.0, 0.15], 0.0)[:, None]
    out: list[Columns] = []
    for name, base, median, cut in _SPEND:
        level = regime.discretionary if cut else 1.0
        rate = act * base * level * np.exp(-cut * regime.discretionary_stress * s)
        c, m, t = _place(rng, w, rng.poisson(rate))
        amt = median * w.spend[c] * np.exp(rng.normal(0, 0.6, len(c)))
        online = (name in ("shopping", "entertainment")) & (rng.random(len(c)) < 0.35)
        channel = np.where(online, _CH["online"], _CH["card"])
        out.append(_block(c, m, t, amt, name, False, _merchant(rng, w, name, c), channel))
    c, m, t = _place(rng, w, rng.poisson(act * 0.6 * np.exp(0.3 * np.maximum(s, 0))))
    credit = rng.random(len(c)) < 0.3 + 0.15 * (s[c, m] > 1)
    amt = 40 * w.spend[c] * np.exp(rng.normal(1, 0.8, len(c)))
    channel = np.where(rng.random(len(c)) < 0.9, _CH["transfer"], _CH["branch"])
    out.append(_block(c, m, t, amt, "transfer", credit, -1, channel))
    c, m, t = _place(rng, w, rng.poisson(act * regime.cash_level * np.exp(regime.cash_stress * s)))
    larger = regime.cash_size_stress * np.maximum(s[c, m], 0)
    notes = np.ceil(np.exp(rng.normal(np.log(4 * w.spend[c]) + larger, 0.5)))
    atm = np.where(rng.random(len(c)) < 0.95, _CH["atm"], _CH["branch"])
    out.append(_block(c, m, t, 20.0 * notes, "cash", False, _merchant(rng, w, "cash", c), atm))
    return out


def _distress(rng: np.random.Generator, w: World, regime: Regime) -> list[Columns]:
    """Bank fees, and utility direct debits returned unpaid a day later (the debit, its
    return as a credit of the same amount, and a fee), full segment only."""
    s, full = w.tx_stress(), (w.segment == FULL)[:, None]
    c, m, t = _place(rng, w, rng.poisson(full * regime.fees * np.maximum(s - 0.3, 0.0)))
    bank = _merchant(rng, w, "fees", c)
    fees = _block(c, m, t, rng.uniform(8, 30, len(c)), "fees", False, bank, _CH["online"])
    c, m, t = _place(rng, w, rng.poisson(full * regime.returned * np.maximum(s - 0.8, 0.0)))
    amt = w.income[c] * 0.025 * np.exp(rng.normal(0, 0.3, len(c)))
    payee, bank = _merchant(rng, w, "utilities", c), _merchant(rng, w, "fees", c)
    back = t + DAY + rng.integers(0, DAY, len(c))
    return [
        fees,
        _block(c, m, t, amt, "utilities", False, payee, _CH["online"]),
        _block(c, m, back, amt, "returned_payment", True, payee, _CH["online"]),
        _block(c, m, back, np.full(len(c), 25.0), "fees", False, bank, _CH["online"]),
    ]


def _events(rng: np.random.Generator, w: World, regime: Regime) -> Columns:
    blocks = _income_events(rng, w, regime) + _bills(rng, w) + _spending(rng, w, regime)
    if regime.fees or regime.returned:
        blocks += _distress(rng, w, regime)
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _merchant_names() -> pl.Series:
    total = sum(_POOLS.values())
    return pl.select(pl.format("M{}", pl.int_range(total).cast(pl.String).str.zfill(5))).to_series()


def opening_balances(rng: np.random.Generator, w: World) -> np.ndarray:
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


def transactions_frame(
    rng: np.random.Generator,
    w: World,
    ids: pl.Series,
    opening: np.ndarray,
    shift: Shift | None = None,
) -> pl.DataFrame:
    """The transactions; with a ``shift``, the events of its months on are drawn again in the
    ``AFTER`` regime from the shocked world (the balance runs on across the shift)."""
    col = _events(rng, w, BEFORE)
    if shift is not None:
        after = _events(shift.transactions_rng, shift.world, AFTER)
        kept, new = col["month"] < shift.month, after["month"] >= shift.month
        col = {k: np.concatenate([col[k][kept], after[k][new]]) for k in col}
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
            "txn_type": pl.Series([DEBIT, CREDIT]).gather(col["credit"].astype(np.int8)),
            "category": pl.Series(CATEGORIES).gather(col["cat"]),
            "merchant_id": _merchant_names().gather(merchant),
            "channel": pl.Series(CHANNELS).gather(col["channel"]),
            "balance_after": balance / 100,
        }
    )
    txn_id = pl.format("{}-T{}", "customer_id", "seq").alias("txn_id")
    return frame.select(txn_id, pl.exclude("seq"))
