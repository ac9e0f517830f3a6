"""Drift: the population as of a date against the champion's reference profile, by PSI.

The population (``[monitoring] population``, reported as ``population``):

* ``customers``: every customer first seen before the date, with point-in-time features at
  it, scored by the champion;
* ``predictions``: the customers the prediction log served in the ``window_days`` up to the
  date, their features re-read as of it, with their newest score logged by the champion
  (rescored by it where only another version served them).

Either way the population is **the customers the model is for**: those already 30 or more
days past due on a statement at the date (due more than ``DELINQUENT_DAYS`` days before it
and unpaid at it) are left out and counted in ``excluded``. The training rows never hold
them (an observation of a customer already in default is not labelled), and they
accumulate: on synthetic data with no shift (3,000 customers, 24 months) the score's PSI
against the training rows grew from 0.21 to 0.40 over a year with them, and stayed between
0.01 and 0.03 at every month without them.

Which features are judged, and the reference bins, follow the rules of
:mod:`predelinq.monitoring.scope`; the others are listed in ``not_monitored`` with the
reason. Measured with these rules on that data, every adjacent-month PSI of the score and of
every monitored feature is below 0.1, once the extract is long enough for the windows.

Above ``[monitoring] max_customers`` eligible customers, a random sample of that many is
compared (seeded: the same date gives the same sample): reading every customer's history was
most of ``monitor``'s time (78,000 customers: 37-50 s on SQLite), and the PSI of a 10,000
sample differs from the whole population's by about (bins - 1) / 10,000.

A champion registered before profiles existed has none: the report says so in ``note`` and
gives no PSI (``score_psi`` None, ``features`` empty); the next retrain stores one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, func, or_, select

from predelinq.config import Settings
from predelinq.db import schema
from predelinq.features import compute_features
from predelinq.features.declarations import FeatureSet
from predelinq.features.export import customers_as_of
from predelinq.features.parse import configured_features
from predelinq.modeling.booster import predict
from predelinq.modeling.registry import Champion, load_champion
from predelinq.monitoring.profile import compare
from predelinq.monitoring.reference import load_profile
from predelinq.monitoring.scope import monitoring_scope, profile_starts
from predelinq.serving.score import NoChampionError

DELINQUENT_DAYS = 30
SAMPLE_SEED = 0

PopulationKind = Literal["customers", "predictions"]


@dataclass(frozen=True)
class DriftReport:
    """The champion's drift at ``as_of``: PSI of the score and of each monitored feature."""

    as_of: date
    model_version: str
    population: PopulationKind
    rows: int  # customers compared
    score_psi: float | None  # None: nothing to compare (no profile, no rows)
    features: dict[str, float]  # monitored feature -> PSI
    drifted_features: list[str]  # PSI >= threshold, largest first
    threshold: float
    not_monitored: dict[str, str] = field(default_factory=dict)  # feature -> why
    excluded: int = 0  # customers left out: already 30+ days past due
    note: str | None = None

    @property
    def drifted(self) -> bool:
        return (self.score_psi or 0.0) >= self.threshold or bool(self.drifted_features)

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "model_version": self.model_version,
            "population": self.population,
            "rows": self.rows,
            "score_psi": self.score_psi,
            "features": dict(self.features),
            "drifted_features": list(self.drifted_features),
            "psi_threshold": self.threshold,
            "not_monitored": dict(self.not_monitored),
            "excluded": self.excluded,
            "note": self.note,
        }


@dataclass(frozen=True)
class Population:
    """The customers compared at a date: their features (a column per feature of the feature
    set) and scores, and how many were left out as already past due."""

    kind: PopulationKind
    customer_ids: pl.Series
    X: np.ndarray
    names: list[str]
    scores: np.ndarray
    excluded: int


def read_population(
    engine: Engine,
    settings: Settings,
    as_of: date,
    champion: Champion,
    features: FeatureSet,
    kind: PopulationKind = "customers",
) -> Population:
    """The population at ``as_of`` (see the module docstring), scored by ``champion``."""
    with engine.connect() as connection:
        delinquent = in_arrears(connection, as_of)
        logged = (
            _logged(connection, as_of, settings.monitoring.window_days, champion.version)
            if kind == "predictions"
            else None
        )
    ids = customers_as_of(engine, as_of) if logged is None else logged["customer_id"]
    kept = ids.filter(~ids.is_in(delinquent.implode())).sort()
    if kept.len() > settings.monitoring.max_customers:
        kept = kept.sample(settings.monitoring.max_customers, seed=SAMPLE_SEED).sort()
    names = list(features.names)
    if kept.is_empty():
        empty = np.empty((0, len(names)))
        return Population(kind, kept, empty, names, np.empty(0), ids.len())
    observations = pl.DataFrame({"customer_id": kept}).with_columns(
        observation_date=pl.lit(as_of, dtype=pl.Date)
    )
    frame = compute_features(engine, observations, settings=settings, features=features)
    X = frame.select(names).to_numpy()
    scores = predict(champion.booster, X[:, champion.columns], threads=settings.threads)
    if logged is not None:
        scores = _logged_first(frame["customer_id"], scores, logged)
    return Population(kind, frame["customer_id"], X, names, scores, ids.len() - kept.len())


def drift_report(engine: Engine, settings: Settings, as_of: date) -> DriftReport:
    """The champion's reference profile against the population at ``as_of``.

    Raises ``NoChampionError`` without a champion, ``FeatureMismatchError`` or
    ``ArtifactError`` when it cannot be scored (as serving would)."""
    feature_set = configured_features(settings)
    champion = load_champion(engine, settings.model_dir, feature_set)
    if champion is None:
        raise NoChampionError("no champion yet: train a model first (predelinq retrain)")
    kind: PopulationKind = settings.monitoring.population
    threshold = settings.monitoring.psi_threshold
    with engine.connect() as connection:
        profile = load_profile(connection, champion.version)
    report = DriftReport(as_of, champion.version, kind, 0, None, {}, [], threshold)
    if profile is None:
        note = f"{champion.version} has no reference profile (registered before profiles)"
        return _with(report, note=note)
    scope = monitoring_scope(profile, feature_set, as_of, profile_starts(profile))
    population = read_population(engine, settings, as_of, champion, feature_set, kind)
    report = _with(report, not_monitored=scope.not_monitored, excluded=population.excluded)
    if not population.scores.size:
        return _with(report, note="no customers to compare at this date")
    psi = compare(profile, population.X, population.names, population.scores, only=scope.monitored)
    over = {name: value for name, value in psi.features.items() if value >= threshold}
    return _with(
        report,
        rows=int(population.scores.size),
        score_psi=None if np.isnan(psi.score) else psi.score,
        features=psi.features,
        drifted_features=sorted(over, key=over.__getitem__, reverse=True),
    )


def _with(report: DriftReport, **changes: Any) -> DriftReport:
    return DriftReport(**{**report.__dict__, **changes})


def in_arrears(connection: Connection, as_of: date) -> pl.Series:
    """Customers 30 or more days past due at ``as_of``: a statement due more than
    ``DELINQUENT_DAYS`` days before it and not paid by it (point in time: a payment on or
    after ``as_of`` is not known then)."""
    p = schema.payments.c
    query = (
        select(p.customer_id)
        .where(
            p.due_date < as_of - timedelta(days=DELINQUENT_DAYS),
            or_(p.paid_date.is_(None), p.paid_date >= as_of),
        )
        .distinct()
    )
    return pl.Series("customer_id", connection.execute(query).scalars().all(), dtype=pl.String)


def _logged(connection: Connection, as_of: date, days: int, version: str) -> pl.DataFrame:
    """The customers served in the ``days`` up to ``as_of`` (inclusive), and each one's newest
    score logged by ``version`` (null where only other versions served it)."""
    p = schema.predictions.c
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    window = (p.served_at >= end - timedelta(days=days)) & (p.served_at < end)
    served = select(p.customer_id).where(window).distinct()
    newest = (
        select(p.customer_id, func.max(p.served_at).label("served_at"))
        .where(window, p.model_version == version)
        .group_by(p.customer_id)
        .subquery()
    )
    scores = select(p.customer_id, p.score).join(
        newest,
        (p.customer_id == newest.c.customer_id) & (p.served_at == newest.c.served_at),
    )
    ids = pl.Series("customer_id", connection.execute(served).scalars().all(), dtype=pl.String)
    rows = connection.execute(scores.where(p.model_version == version)).all()
    logged = pl.DataFrame(
        rows, schema={"customer_id": pl.String, "score": pl.Float64}, orient="row"
    ).unique("customer_id", keep="last")
    return pl.DataFrame({"customer_id": ids}).join(logged, on="customer_id", how="left")


def _logged_first(ids: pl.Series, rescored: np.ndarray, logged: pl.DataFrame) -> np.ndarray:
    """The logged score of each of ``ids`` where there is one, else the champion's."""
    frame = pl.DataFrame({"customer_id": ids, "rescored": rescored}).join(
        logged, on="customer_id", how="left", maintain_order="left"
    )
    return frame.select(pl.coalesce("score", "rescored")).to_series().to_numpy()
