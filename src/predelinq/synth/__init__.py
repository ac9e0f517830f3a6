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

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from predelinq.synth.payments import derive_labels, observation_candidates, payments_frame
from predelinq.synth.transactions import CATEGORIES, opening_balances, transactions_frame
from predelinq.synth.world import customers_frame, draw_world

__all__ = [
    "CATEGORIES",
    "SyntheticData",
    "derive_labels",
    "generate",
    "write",
]


@dataclass(frozen=True)
class SyntheticData:
    customers: pl.DataFrame
    transactions: pl.DataFrame
    payments: pl.DataFrame
    labels: pl.DataFrame

    def tables(self) -> dict[str, pl.DataFrame]:
        """The four tables by the name of their contract file."""
        return {
            "customers": self.customers,
            "transactions": self.transactions,
            "payments": self.payments,
            "labels": self.labels,
        }


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
    w = draw_world(rng, n_customers, start, months)
    payments = payments_frame(rng, w, ids)
    return SyntheticData(
        customers=customers_frame(rng, w, ids),
        transactions=transactions_frame(rng, w, ids, opening_balances(balance_rng, w)),
        payments=payments,
        labels=derive_labels(payments, observation_candidates(w, ids, start, months)),
    )


def write(data: SyntheticData, out_dir: Path, *, file_format: str = "csv") -> dict[str, Path]:
    """Write the four tables as ``<name>.csv`` or ``<name>.parquet``; return name -> path."""
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in data.tables().items():
        paths[name] = out_dir / f"{name}.{file_format}"
        if file_format == "csv":
            frame.write_csv(
                paths[name], datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d"
            )
        else:
            frame.write_parquet(paths[name])
    return paths
