"""Realised performance: how each model performed on the labels whose outcome is now known.

A label **matures** once its observation date is ``settings.label_horizon_days`` old at the
as-of date (``observation_date <= as_of - horizon``, as the setting and the backtest have
it): until then its outcome window is open and a 0 may still turn into a 1. Each matured
label gets one score, and the row its ``source``:

- ``logged``: the score served for that customer and date (``predictions`` rows with
  ``as_of`` equal to the observation date; of several, the latest ``served_at``), under the
  version that served it. The log is read as it stands; the join runs in the database.
- ``rescored``: no score was logged, so the **model of record** at that date re-scores the
  row from point-in-time features (the historical engine: nothing on or after the date
  counts). The model of record at date d is the ``to_version`` of the last
  ``champion_changes`` row with ``changed_at`` before the end of d. **History older than
  every promotion** (synthetic or imported data: outcomes from 2024, models registered
  today) is given to the **earliest champion**, as if it had served from the start; so that
  its figure stays out of sample, see ``excluded``.
- ``excluded``: a row the re-scoring version could have learnt from, left out and counted:
  its customer is one the version's artifact learnt from (``model_training_customers.learnt``)
  and it is dated on or before the day the version was created. Versions that record no
  customers (registered before that record existed) exclude nothing.
- ``unscored``: the version of record cannot re-score (its artifact is missing or fails
  verification, or its features are no longer declared as it learnt them); left out and
  counted. Rows with neither a logged score nor a model of record (nothing was ever
  promoted) are left out without a version.
- ``skipped``: re-scoring costs per customer (its history is read and walked), so the rows of
  at most ``max_rescored_customers`` customers (default ``RESCORE_MAX_CUSTOMERS``) are
  re-scored: when more customers have rows to re-score, a random sample of them (seeded: the
  same customers give the same sample), whole customers so the clustered intervals hold, and
  the other rows are counted as skipped. The intervals are those of the rows measured. At
  100,000 customers (625,407 matured rows, none logged; SQLite, 2 threads, a shared and
  loaded machine) re-scoring every row took 180 s; 10,000 customers' 68,273 rows took 8.1 s
  of CPU and 5,000 customers' 34,219 rows 3.1-5.4 s, beside 1.4-2.2 s to read them all.
  Per month that still leaves about 4,300 rows and an interval of about ±0.015.

Each version and month (of the observation date) gets rows, positives, the AUC with its 95%
interval (DeLong clustered by customer, the gate's ``auc_interval``), KS, Brier and
calibration-in-the-large (mean score minus observed rate), next to the AUC recorded when the
version was trained. A period with one class has no AUC, interval or KS.

``champion_performance`` pools the champion's rows since it went into service (for the
earliest champion, from the start of the data): what the performance trigger judges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa
import xgboost
from sqlalchemy import Connection, Engine, and_, exists, or_, select

from predelinq.config import Settings
from predelinq.db.readers.arrow import fetch_arrow
from predelinq.db.schema import champion_changes, labels, predictions
from predelinq.features import compute_features
from predelinq.features.declarations import FeatureMismatchError, FeatureSet, model_columns
from predelinq.features.parse import configured_features
from predelinq.modeling.artifacts import ArtifactError
from predelinq.modeling.booster import predict
from predelinq.modeling.metrics import evaluate
from predelinq.modeling.registry import ModelVersion, current_champion, list_versions, load_version
from predelinq.retraining.gate import Scored, auc_interval
from predelinq.retraining.selection import training_customers

LOGGED, RESCORED, EXCLUDED = "logged", "rescored", "excluded"
UNSCORED, SKIPPED = "unscored", "skipped"
# Re-scoring costs per customer (its history is read and walked once, whatever its number of
# rows): at most this many customers' rows are re-scored, a random sample of them.
RESCORE_MAX_CUSTOMERS = 5_000
SAMPLE_SEED = 0
ALL_PERIODS = "all"

_ROWS = {
    "customer_id": pa.string(),
    "observation_date": pa.date32(),  # text on SQLite, parsed below
    "label": pa.int8(),
    "model_version": pa.string(),
    "score": pa.float64(),
}


@dataclass(frozen=True)
class PeriodPerformance:
    """One version's realised performance over one month (``YYYY-MM``) or pooled (``all``)."""

    model_version: str
    period: str
    rows: int  # scored rows (logged + rescored)
    positives: int
    auc: float | None  # None: one class only
    auc_low: float | None  # the 95% interval; None without an AUC or with one customer
    auc_high: float | None
    expected_auc: float | None  # recorded when the version was trained
    ks: float | None
    brier: float | None
    calibration: float | None  # mean score minus observed positive rate
    logged: int  # rows scored from the prediction log
    rescored: int  # rows re-scored by the version of record
    excluded: int = 0  # rows left out: the version could have learnt them
    unscored: int = 0  # rows left out: the version cannot re-score
    skipped: int = 0  # rows left out: their customer is outside the re-scoring sample

    def as_json(self) -> dict[str, Any]:
        """The issue's keys first (``model_version``, ``period``, ``rows``, ``positives``,
        ``auc``, ``auc_low``, ``auc_high``, ``expected_auc``), then the others: the fields."""
        return asdict(self)


@dataclass(frozen=True)
class Timeline:
    """The model of record by date: ``versions[k]`` from ``starts[k]`` (one entry per day,
    that day's last champion move) and ``earliest``, the first champion ever, before
    ``starts[0]``."""

    starts: list[date]
    versions: list[str]
    earliest: str | None

    def of_record(self, dates: pl.Series) -> pl.Series:
        """The version of record at each date (null when nothing was ever promoted)."""
        if self.earliest is None:
            return pl.Series("of_record", [None] * dates.len(), dtype=pl.String)
        positions = np.searchsorted(
            np.asarray(self.starts, dtype="datetime64[D]"),
            dates.cast(pl.Date).to_numpy().astype("datetime64[D]"),
            side="right",
        )
        chosen = np.asarray([self.earliest, *self.versions], dtype=object)[positions]
        return pl.Series("of_record", chosen.tolist(), dtype=pl.String)

    def tenure_start(self, version: str) -> date | None:
        """The first day of ``version``'s current spell of record; None when that spell
        reaches back to the start (the earliest champion, never replaced since)."""
        if not self.versions or self.versions[-1] != version:
            return None
        k = len(self.versions) - 1
        while k > 0 and self.versions[k - 1] == version:
            k -= 1
        return None if k == 0 and version == self.earliest else self.starts[k]


@dataclass(frozen=True)
class MaturedScores:
    """Every matured label in range with its score: ``rows`` holds ``customer_id``,
    ``observation_date``, ``label``, ``model_version``, ``score`` (null unless ``source`` is
    logged or rescored) and ``source``."""

    rows: pl.DataFrame
    expected_auc: dict[str, float | None]  # each registered version's AUC at training
    champion: str | None
    timeline: Timeline


def read_timeline(connection: Connection) -> Timeline:
    """The champion's moves as a model-of-record timeline (one entry per day)."""
    moves = connection.execute(
        select(champion_changes.c.changed_at, champion_changes.c.to_version).order_by(
            champion_changes.c.changed_at, champion_changes.c.change_id
        )
    ).all()
    last_of_day = {changed_at.date(): version for changed_at, version in moves}  # in order
    earliest = moves[0].to_version if moves else None
    return Timeline(list(last_of_day), list(last_of_day.values()), earliest)


def matured_scores(
    engine: Engine,
    settings: Settings,
    as_of: date,
    *,
    since: date | None = None,
    version: str | None = None,
    max_rescored_customers: int | None = RESCORE_MAX_CUSTOMERS,
) -> MaturedScores:
    """The matured labels dated from ``since`` with their scores (see the module docstring);
    ``version``: only the rows given to that version; ``max_rescored_customers``: None
    re-scores every customer's rows."""
    with engine.connect() as connection:
        timeline = read_timeline(connection)
        champion = current_champion(connection)
        versions = {v.version: v for v in list_versions(connection)}
        rows = _read_matured(connection, as_of - timedelta(days=settings.label_horizon_days), since)
    rows = rows.with_columns(timeline.of_record(rows["observation_date"]))
    rows = (
        rows.with_columns(
            model_version=pl.coalesce("model_version", "of_record"),
            source=pl.when(pl.col("score").is_not_null()).then(pl.lit(LOGGED)).otherwise(None),
        )
        .filter(pl.col("model_version").is_not_null())
        .drop("of_record")
    )
    if version is not None:
        rows = rows.filter(pl.col("model_version") == version)
    rows = _exclude_learnt(engine, rows, versions)
    rows = _sample(rows, max_rescored_customers)
    rows = _rescore(engine, settings, rows, versions)
    expected = {name: v.auc for name, v in versions.items()}
    return MaturedScores(rows, expected, champion, timeline)


def _read_matured(connection: Connection, cutoff: date, since: date | None) -> pl.DataFrame:
    """Labels dated up to ``cutoff`` (and from ``since``), each with the latest score logged
    for its customer and date, if any: one query, the join in the database. (A logged row
    that no later one supersedes: at 625,407 labels and 1.25M logged rows this anti-join
    took 5.3 s of CPU on SQLite, against 7.4 s for a window function; 6.4 s and 8.9 s wall
    on PostgreSQL on a loaded machine.)"""
    served, newer = predictions, predictions.alias("newer")
    superseded = exists().where(
        newer.c.customer_id == served.c.customer_id,
        newer.c.as_of == served.c.as_of,
        or_(
            newer.c.served_at > served.c.served_at,
            and_(newer.c.served_at == served.c.served_at, newer.c.request_id > served.c.request_id),
        ),
    )
    joined = labels.outerjoin(
        served,
        and_(
            served.c.customer_id == labels.c.customer_id,
            served.c.as_of == labels.c.observation_date,
            ~superseded,
        ),
    )
    matured = [labels.c.observation_date <= cutoff]
    if since is not None:
        matured.append(labels.c.observation_date >= since)
    query = (
        select(
            labels.c.customer_id,
            labels.c.observation_date,
            labels.c.label,
            served.c.model_version,
            served.c.score,
        )
        .select_from(joined)
        .where(*matured)
    )
    # the driver's rows, not SQLAlchemy's: at 625,407 rows 1.4 s instead of 2.4 s (SQLite)
    sqlite = connection.dialect.name == "sqlite"
    types = _ROWS | ({"observation_date": pa.string()} if sqlite else {})
    table = fetch_arrow(connection.execute(query).cursor, pa.schema(types))
    rows = cast(pl.DataFrame, pl.from_arrow(table))
    if sqlite:
        rows = rows.with_columns(pl.col("observation_date").str.to_date("%Y-%m-%d"))
    return rows.unique(["customer_id", "observation_date"])  # two rows of one request: one


def _mark(rows: pl.DataFrame, where: pl.Expr, source: str) -> pl.DataFrame:
    """``source`` for the rows still without one where ``where`` holds."""
    chosen = pl.col("source").is_null() & where
    return rows.with_columns(source=pl.when(chosen).then(pl.lit(source)).otherwise("source"))


def _exclude_learnt(
    engine: Engine, rows: pl.DataFrame, versions: dict[str, ModelVersion]
) -> pl.DataFrame:
    """Mark ``excluded`` the rows to re-score that their version could have learnt from."""
    learnt = []
    with engine.connect() as connection:
        for name in rows.filter(pl.col("source").is_null())["model_version"].unique():
            customers = training_customers(connection, name)
            if customers is not None and name in versions:
                created = pl.lit(versions[name].created_at.date(), dtype=pl.Date)
                learnt.append(
                    customers.to_frame().with_columns(model_version=pl.lit(name), created=created)
                )
    if not learnt:
        return rows
    seen = pl.concat(learnt).unique(["model_version", "customer_id"])
    flagged = rows.join(seen, on=["model_version", "customer_id"], how="left")
    return _mark(flagged, pl.col("observation_date") <= pl.col("created"), EXCLUDED).drop("created")


def _sample(rows: pl.DataFrame, max_customers: int | None) -> pl.DataFrame:
    """Mark ``skipped`` the rows to re-score outside a seeded random sample of at most
    ``max_customers`` of their customers."""
    customers = rows.filter(pl.col("source").is_null())["customer_id"].unique().sort()
    if max_customers is None or customers.len() <= max_customers:
        return rows
    order = np.random.default_rng(SAMPLE_SEED).permutation(customers.len())[:max_customers]
    return _mark(rows, ~pl.col("customer_id").is_in(customers.gather(order).implode()), SKIPPED)


def _rescore(
    engine: Engine, settings: Settings, rows: pl.DataFrame, versions: dict[str, ModelVersion]
) -> pl.DataFrame:
    """Score the rows without a source by their version of record: features for all of them
    at once, then each version's booster (loaded once) on its rows; ``unscored`` where it
    cannot."""
    done, pending = (
        rows.filter(pl.col("source").is_not_null()),
        rows.filter(pl.col("source").is_null()),
    )
    if pending.is_empty():
        return rows
    features = configured_features(settings)
    observed = pending.select("customer_id", "observation_date")
    frame = compute_features(engine, observed, settings=settings, features=features)
    matrix = frame.select(features.names).to_numpy()
    version_of = pending["model_version"].to_numpy()
    scores = np.full(pending.height, np.nan)
    for name in np.unique(version_of):
        booster, columns = _loaded(settings, versions.get(name), features)
        if booster is not None:
            mine = version_of == name
            scores[mine] = predict(booster, matrix[mine][:, columns], threads=settings.threads)
    rescored = pending.with_columns(
        score=pl.Series(scores, dtype=pl.Float64).fill_nan(None),
        source=pl.Series(np.where(np.isnan(scores), UNSCORED, RESCORED), dtype=pl.String),
    )
    return pl.concat([done, rescored]).sort("customer_id", "observation_date")


def _loaded(
    settings: Settings, version: ModelVersion | None, features: FeatureSet
) -> tuple[xgboost.Booster | None, list[int]]:
    """A version's booster and its columns among ``features``; (None, []) when it cannot
    re-score (unknown, features changed, artifact unusable)."""
    if version is None:
        return None, []
    try:
        columns = model_columns(version.version, version.details, features)
        return load_version(settings.model_dir, version), columns
    except (FeatureMismatchError, ArtifactError):
        return None, []


def _measure(
    version: str, period: str, group: pl.DataFrame, expected: float | None
) -> PeriodPerformance:
    """The metrics of one version's rows over one period."""
    sources = group["source"]
    scored = group.filter(pl.col("source").is_in([LOGGED, RESCORED]))
    y = scored["label"].to_numpy().astype(np.int64)
    s = scored["score"].to_numpy().astype(float)
    positives = int(y.sum())
    auc = low = high = ks = brier = calibration = None
    if y.size:
        metrics = evaluate(y, s, 0.5)
        brier = metrics["brier"]
        calibration = float(s.mean() - y.mean())
        if 0 < positives < y.size:
            customers = scored["customer_id"].rank("dense").to_numpy()  # codes: cheaper than text
            interval = auc_interval(Scored(y, s, customers))
            auc, ks = metrics["auc"], metrics["ks"]
            if np.isfinite(interval.low):
                low, high = max(interval.low, 0.0), min(interval.high, 1.0)  # AUC's range
    return PeriodPerformance(
        model_version=version,
        period=period,
        rows=int(y.size),
        positives=positives,
        auc=auc,
        auc_low=low,
        auc_high=high,
        expected_auc=expected,
        ks=ks,
        brier=brier,
        calibration=calibration,
        logged=int((sources == LOGGED).sum()),
        rescored=int((sources == RESCORED).sum()),
        excluded=int((sources == EXCLUDED).sum()),
        unscored=int((sources == UNSCORED).sum()),
        skipped=int((sources == SKIPPED).sum()),
    )


def by_period(scores: MaturedScores) -> list[PeriodPerformance]:
    """Each version's performance per month of the observation date, by month then version."""
    rows = scores.rows.with_columns(period=pl.col("observation_date").dt.strftime("%Y-%m"))
    groups = rows.partition_by("period", "model_version", as_dict=True)
    return [
        _measure(version, period, groups[(period, version)], scores.expected_auc.get(version))
        for period, version in sorted(groups)
    ]


def pooled_champion(scores: MaturedScores) -> PeriodPerformance | None:
    """The champion's rows since it went into service, pooled (period ``all``); None when
    there is no champion or none of its rows has matured."""
    if scores.champion is None:
        return None
    mine = scores.rows.filter(pl.col("model_version") == scores.champion)
    start = scores.timeline.tenure_start(scores.champion)
    if start is not None:
        mine = mine.filter(pl.col("observation_date") >= start)
    if mine.is_empty():
        return None
    return _measure(scores.champion, ALL_PERIODS, mine, scores.expected_auc.get(scores.champion))


def realised_performance(
    engine: Engine,
    settings: Settings,
    as_of: date,
    *,
    since: date | None = None,
    max_rescored_customers: int | None = RESCORE_MAX_CUSTOMERS,
) -> list[PeriodPerformance]:
    """Each version's realised performance per month on the labels matured at ``as_of``
    (dated from ``since``), as the module docstring describes."""
    scores = matured_scores(
        engine, settings, as_of, since=since, max_rescored_customers=max_rescored_customers
    )
    return by_period(scores)


def champion_performance(
    engine: Engine,
    settings: Settings,
    as_of: date,
    *,
    max_rescored_customers: int | None = RESCORE_MAX_CUSTOMERS,
) -> PeriodPerformance | None:
    """The champion's pooled realised performance since it went into service (see
    :func:`pooled_champion`); only its own rows are read and re-scored."""
    with engine.connect() as connection:
        champion = current_champion(connection)
        timeline = read_timeline(connection)
    if champion is None:
        return None
    scores = matured_scores(
        engine,
        settings,
        as_of,
        since=timeline.tenure_start(champion),
        version=champion,
        max_rescored_customers=max_rescored_customers,
    )
    return pooled_champion(scores)
