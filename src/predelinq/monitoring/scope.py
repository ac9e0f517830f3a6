"""Which features PSI can judge, from their declarations and the data: the rules of drift.

Measured on synthetic data with no shift (3,000 customers, 24 months, 78 built-in features),
PSI between two adjacent months, or between a month and
the training rows, is large for four reasons that are not a change in behaviour. Each has a
rule, from credit-risk monitoring practice:

A. **Elapsed time is not drift.** A feature whose value grows with the calendar for a
   customer who does nothing different (account age, history depth) moves every month: PSI
   5 to 14 between adjacent months. Derived from the declaration, not a list of names: the
   aggregation ``days_since_first``, or an all-history window (no ``window``) with an
   aggregation that accumulates (``count``, ``sum``, ``max``, ``min``, ``first``,
   ``active_days``, ``days``, ``periods_with``, ``periods_without``), in the feature or in
   a part of it (``minus``, ``ratio``). Never drift-monitored.
B. **Compare only full windows.** Where a window (``window`` + ``offset`` days, the longest
   of the feature's parts) reaches before its source's first event in the database, it is
   truncated by the extract, not by the customer (PSI up to 14 in an extract's first
   months). A feature is compared at a date only when its window is full there, and its
   reference bins keep only training rows whose window was full. The sources' first dates
   are read at registration and kept in the profile (``profile_starts``), so a drift
   report scans no event table for them.
C. **Bins from the newest training rows** (``REFERENCE_DAYS`` of observation dates up to the
   newest): the population the model last learnt from. A mixture of every month of a long
   training period is no month's population (synthetic balances widen with time: PSI up to
   1.0 against all training rows, under 0.15 against the newest quarter, while the score's
   PSI stays under 0.03 either way).
D. **A feature that is not stable in its own reference is not judged by PSI.** Fixed-day
   windows against monthly rent and salary move with the calendar (a 30-day window holds
   one rent payment or two): PSI 0.2 to 0.8 between adjacent months with no change in
   behaviour. The profile records each feature's largest PSI between adjacent observation
   months of the training rows' newest year (``STABILITY_DAYS``: every month length and
   February once; full windows only; months of ``MIN_MONTH_ROWS`` rows or more, so sampling
   noise stays near 0.03); at ``STABLE_PSI`` (0.1, the usual "stable" line) or
   more, the feature is reported as not monitored, with that figure. This is the reference
   period's own variation as the baseline, as NannyML sets its thresholds.

The score is always compared: its bins come from the same newest rows (rule C).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from sqlalchemy import Connection, func, select

from predelinq.db import schema
from predelinq.features.declarations import Agg, Aggregate, Feature, FeatureSet, Source
from predelinq.monitoring.profile import Profile, build_profile, stability

REFERENCE_DAYS = 91  # rule C: the newest quarter of the training rows' observation dates
STABLE_PSI = 0.1  # rule D
STABILITY_DAYS = 365  # rule D: a year of observation months covers the calendar's cycle
MIN_MONTH_ROWS = 500  # rule D: PSI's sampling noise is about (bins - 1) * (1/n1 + 1/n2)
ACCUMULATING: frozenset[Agg] = frozenset(
    {
        "count",
        "sum",
        "max",
        "min",
        "first",
        "active_days",
        "days",
        "periods_with",
        "periods_without",
    }
)


@dataclass(frozen=True)
class Lookback:
    """How far back a feature reads: per source, the longest window + offset in days; or
    ``elapsed`` when it measures time itself (rule A)."""

    elapsed: str | None = None  # why, when rule A applies
    days: Mapping[Source, int] = field(default_factory=dict)


def lookback(feature: Feature, features: FeatureSet) -> Lookback:
    """The feature's look-back, following ``minus`` and ``ratio`` (inline or by name)."""
    by_name = features.by_name()
    days: dict[Source, int] = {}
    seen: set[str] = set()
    pending: list[Feature | Aggregate] = [feature]
    while pending:
        part = pending.pop()
        if isinstance(part, Feature):
            if part.name in seen:
                continue
            seen.add(part.name)
            for reference in (part.minus, part.ratio):
                if isinstance(reference, str):
                    if reference in by_name:
                        pending.append(by_name[reference])
                elif reference is not None:
                    pending.append(reference)
            part = part.aggregate
        if part.agg == "days_since_first":
            return Lookback("elapsed time: days since the first row")
        if part.window is None and part.agg in ACCUMULATING:
            return Lookback(f"elapsed time: an all-history {part.agg} grows with the calendar")
        if part.window is not None:
            span = part.window + part.offset
            days[part.source] = max(days.get(part.source, 0), span)
    return Lookback(None, days)


def data_starts(connection: Connection) -> dict[Source, date | None]:
    """The date of each event source's first row (None: no rows): where windows begin to be
    truncated by the extract rather than by the customer."""
    first_txn = connection.execute(select(func.min(schema.transactions.c.txn_time))).scalar()
    first_due = connection.execute(select(func.min(schema.payments.c.due_date))).scalar()
    return {"transactions": _as_date(first_txn), "payments": _as_date(first_due)}


def _as_date(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def full_windows(
    look: Lookback, dates: np.ndarray, starts: Mapping[Source, date | None]
) -> np.ndarray:
    """Which of ``dates`` (datetime64[D]) have every window of the feature full."""
    full = np.ones(dates.shape, dtype=bool)
    for source, days in look.days.items():
        start = starts.get(source)
        if start is not None:
            full &= dates - np.timedelta64(days, "D") >= np.datetime64(start, "D")
    return full


def reference_profile(
    X: np.ndarray,
    observation_dates: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    features: FeatureSet,
    starts: Mapping[Source, date | None],
    bins: int,
) -> Profile:
    """The reference profile of a model's training rows (``X``: a column per feature of
    ``features``; ``score``: the model's predictions for rows of ``X``): bins over the
    newest ``REFERENCE_DAYS`` of observation dates with full windows (rules B, C), and
    each feature's month-to-month PSI over the newest year of training months (rule D)."""
    dates = np.asarray(observation_dates).astype("datetime64[D]")
    names = list(features.names)
    newest = np.zeros(dates.shape, dtype=bool)
    if dates.size:
        newest = dates >= dates.max() - np.timedelta64(REFERENCE_DAYS - 1, "D")
    full = {f.name: full_windows(lookback(f, features), dates, starts) for f in features.features}
    recent = X[newest]
    profile = build_profile(
        recent, names, score(recent), bins, rows={n: m[newest] for n, m in full.items()}
    )
    year = dates >= dates.max() - np.timedelta64(STABILITY_DAYS - 1, "D")
    months = dates[year].astype("datetime64[M]")
    rows = {name: mask[year] for name, mask in full.items()}
    variation = stability(X[year], names, months, bins, rows=rows, min_rows=MIN_MONTH_ROWS)
    stored: dict[str, str | None] = {
        source: None if day is None else day.isoformat() for source, day in starts.items()
    }
    return Profile(profile.rows, profile.score, profile.features, variation, stored)


def profile_starts(profile: Profile) -> dict[Source, date | None]:
    """The data's start per source as recorded in ``profile`` (rule B then judges a date
    with the start its reference bins were built with, and drift needs no scan for it)."""
    found: dict[Source, date | None] = {}
    sources: tuple[Source, ...] = ("transactions", "payments")
    for source in sources:
        day = profile.starts.get(source)
        found[source] = None if day is None else date.fromisoformat(day)
    return found


@dataclass(frozen=True)
class Scope:
    """The features drift judges at a date, and why each other one is not judged."""

    monitored: tuple[str, ...]
    not_monitored: dict[str, str]


def monitoring_scope(
    profile: Profile,
    features: FeatureSet,
    as_of: date,
    starts: Mapping[Source, date | None],
    names: tuple[str, ...] | None = None,
) -> Scope:
    """Rules A, B and D for ``names`` (default: every feature of the profile that
    ``features`` still declares) at ``as_of``."""
    declared = features.by_name()
    wanted = names if names is not None else tuple(n for n in profile.features if n in declared)
    monitored: list[str] = []
    skipped: dict[str, str] = {}
    day = np.array([np.datetime64(as_of, "D")])
    for name in wanted:
        bins, feature = profile.features.get(name), declared.get(name)
        if bins is None or feature is None:
            skipped[name] = "not in the model's reference profile"
            continue
        look = lookback(feature, features)
        moves = profile.stability.get(name, 0.0)
        if look.elapsed:
            skipped[name] = look.elapsed
        elif not full_windows(look, day, starts)[0]:
            skipped[name] = f"window not full at {as_of}: {_windows(look, starts)}"
        elif not bins.rows:
            skipped[name] = f"window never full in the training rows: {_windows(look, starts)}"
        elif moves >= STABLE_PSI:
            skipped[name] = (
                f"not stable in its own training rows: PSI {moves:.2f} between adjacent "
                "months with no change in behaviour"
            )
        else:
            monitored.append(name)
    return Scope(tuple(monitored), skipped)


def _windows(look: Lookback, starts: Mapping[Source, date | None]) -> str:
    return ", ".join(
        f"{days} days of {source}, which start on {starts.get(source)}"
        for source, days in look.days.items()
    )
