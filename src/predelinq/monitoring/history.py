"""Drift over time: the champion's drift report at a date and at the same day of each of the
months before it, for the dashboard's heatmap of feature PSI and its score distribution.

Every point is what :func:`~predelinq.monitoring.drift.drift_report` gives at its date: the
same population (the same seeded sample above ``[monitoring] max_customers``), the same
scope rules at that date, the same PSI. Only the work is shared: the features of every
(customer, date) row come from one ``compute_features`` call
(:func:`~predelinq.monitoring.drift.read_populations`), so a customer in several dates'
populations has its events read once and the model predicts once.

The dates keep ``as_of``'s day of the month (the 31st becomes the month's last day). The
newest point is the monitoring report's own date, and an older point at the same place in
the month sees the same part of the monthly cycle: the rent and salary that fixed-day
windows catch or miss depending on the day (rule D of :mod:`predelinq.monitoring.scope`).
A date on which no customer had yet been seen is skipped: it has nothing to compare.

``score_shares`` follow :class:`~predelinq.monitoring.profile.Bins`: one share per bin of the
reference's score bins (``len(score_edges) + 1``, right-closed), as a share of every
customer compared. A score is never missing (the model scores every row, the log stores a
score), so they sum to 1, as ``reference_shares`` do; a point with no customers to compare
has ``rows`` 0, ``score_psi`` None, no features and shares of 0.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select

from predelinq.config import Settings
from predelinq.db import schema
from predelinq.features.parse import configured_features
from predelinq.monitoring.drift import (
    PopulationKind,
    champion_in_service,
    judge,
    no_profile_note,
    read_populations,
)
from predelinq.monitoring.reference import load_profile

DEFAULT_MONTHS = 6


@dataclass(frozen=True)
class DriftPoint:
    """The champion's drift at one date (equal to ``drift_report`` at it)."""

    as_of: date
    rows: int  # customers compared
    score_psi: float | None  # None: nothing to compare
    features: dict[str, float]  # monitored feature -> PSI (the scope rules at as_of)
    score_shares: list[float]  # share of the customers compared in each reference score bin


@dataclass(frozen=True)
class DriftHistory:
    """The champion's drift at ``as_of`` and at the months before it."""

    model_version: str
    score_edges: list[float]  # the reference profile's inner cut points of the score
    reference_shares: list[float]  # the reference profile's score shares per bin
    points: list[DriftPoint]  # oldest first; the last one is at as_of
    note: str | None = None  # e.g. no profile for this version


def drift_history(
    engine: Engine, settings: Settings, as_of: date, *, months: int = DEFAULT_MONTHS
) -> DriftHistory:
    """The champion's drift at ``as_of`` and at the same day of each of the ``months - 1``
    months before it, skipping dates before the first customer (see the module docstring).

    Raises ``NoChampionError`` without a champion, ``FeatureMismatchError`` or
    ``ArtifactError`` when it cannot be scored, as ``drift_report`` does."""
    feature_set = configured_features(settings)
    champion = champion_in_service(engine, settings, feature_set)
    with engine.connect() as connection:
        profile = load_profile(connection, champion.version)
        first = first_customer(connection)
    if profile is None:
        return DriftHistory(champion.version, [], [], [], note=no_profile_note(champion.version))
    edges, reference = list(profile.score.edges), list(profile.score.shares)
    dates = [day for day in history_dates(as_of, months) if _seen_before(first, day)]
    if not dates:
        note = f"no customer was first seen before {as_of}"
        return DriftHistory(champion.version, edges, reference, [], note=note)
    kind: PopulationKind = settings.monitoring.population
    populations = read_populations(engine, settings, dates, champion, feature_set, kind)
    points: list[DriftPoint] = []
    for day, population in zip(dates, populations, strict=True):
        judged = judge(profile, feature_set, day, population)
        counts = profile.score.counts(population.scores)[:-1]  # the last: missing, never
        shares = counts / max(population.scores.size, 1)  # no rows: shares of 0
        points.append(
            DriftPoint(day, judged.rows, judged.score_psi, judged.features, shares.tolist())
        )
    return DriftHistory(champion.version, edges, reference, points)


def history_dates(as_of: date, months: int) -> list[date]:
    """``as_of`` and the same day of each of the ``months - 1`` months before it (the
    month's last day where it is shorter), oldest first."""
    if months < 1:
        raise ValueError(f"a drift history needs at least one month, not {months}")
    found: list[date] = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(as_of.year * 12 + as_of.month - 1 - back, 12)
        last = calendar.monthrange(year, month + 1)[1]
        found.append(date(year, month + 1, min(as_of.day, last)))
    return found


def first_customer(connection: Connection) -> datetime | None:
    """When the first customer was seen (None: no customers)."""
    first = connection.execute(select(func.min(schema.customers.c.created_at))).scalar()
    if first is None or isinstance(first, datetime):
        return first
    return datetime.fromisoformat(str(first))


def _seen_before(first: datetime | None, day: date) -> bool:
    """Whether a customer was first seen before ``day`` (the population's rule)."""
    return first is not None and first < datetime.combine(day, datetime.min.time())
