"""Scoring, in one place: read -> features -> predict, the risk band and the thread policy.

``score`` is what every scoring path runs: ``predelinq score`` (``score_customers``), the
API's ``/predict`` micro-batches and its ``/predict/batch`` chunks (``batcher.py``). Scores
are per row: a customer's score depends neither on the path nor on who is scored with it.

Reads: the API reads over one pooled connection in its own process (``read_at_date``), so an
HTTP request never starts a process nor opens a connection; the CLI and the library read in
bulk (``read_inputs``, which on SQLite reads ``large_read_customers`` or more in a child
process).

Thread policy (the only one):

- A model predicts on ``settings.threads`` OpenMP threads, set once on its booster when it is
  loaded (``for_serving``). Scoring never sets a booster parameter: the API's threads share
  the booster, and ``predict(threads=None)`` keeps its setting.
- ``/predict``'s contributions are computed from a matrix built on one thread
  (``EXPLAIN_MATRIX_THREADS``): a micro-batch has at most 256 rows, and building it on every
  core made the OpenMP threads wait on each other.
- The API scores each micro-batch or chunk in one Python thread (``batcher.py`` says why).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db.readers import read_at_date, read_inputs
from predelinq.errors import PredelinqError
from predelinq.features.declarations import FeatureSet
from predelinq.features.export import NoKnownCustomerError, customers_as_of
from predelinq.features.freshness import freshness_columns
from predelinq.features.online import matrix_and_newest_event_at_date
from predelinq.features.parse import configured_features
from predelinq.modeling.booster import contributions, predict
from predelinq.modeling.registry import Champion, load_champion
from predelinq.monitoring.predictions import log_scores
from predelinq.statuses import PredictionSource

EXPLAIN_MATRIX_THREADS = 1
BANDS = ("low", "medium", "high")


class NoChampionError(PredelinqError):
    """No model has been promoted yet."""


@dataclass(frozen=True)
class Scores:
    """The scores of the known customers among those asked, in the order asked."""

    ids: list[str]
    scores: np.ndarray
    newest_event_us: np.ndarray  # microseconds since the epoch; NaN: no event before as_of
    features: np.ndarray | None = None  # with explain: the model's features, a row each
    contributions: np.ndarray | None = None  # with explain: per feature, without the bias

    @classmethod
    def none(cls) -> Scores:
        return cls([], np.empty(0), np.empty(0))

    @classmethod
    def concat(cls, parts: Sequence[Scores]) -> Scores:
        """Parts scored without explanations, one after the other."""
        if not parts:
            return cls.none()
        return cls(
            [customer_id for part in parts for customer_id in part.ids],
            np.concatenate([part.scores for part in parts]),
            np.concatenate([part.newest_event_us for part in parts]),
        )


def for_serving(champion: Champion, settings: Settings) -> Champion:
    """``champion`` ready to score from threads that share it: its booster predicts on
    ``settings.threads`` OpenMP threads (the thread policy above)."""
    champion.booster.set_param({"nthread": settings.threads})
    return champion


def score(
    engine: Engine,
    settings: Settings,
    champion: Champion,
    features: FeatureSet,
    ids: Sequence[str],
    as_of: date,
    *,
    explain: bool = False,
    bulk: bool = False,
    snapshot: str | None = None,
) -> Scores:
    """Scores of the customers of ``ids`` (distinct) the database knows, as of ``as_of``.

    ``bulk``: read through the bulk reader (the CLI and the library: many customers); else
    over one pooled connection, in this process (the API). ``explain``: also each customer's
    features and their contributions to its score. ``snapshot``: a bulk read of a snapshot
    exported elsewhere (Dask mode, see ``read_inputs``)."""
    rows = _read(engine, settings, ids, as_of, bulk=bulk, snapshot=snapshot)
    known = set(rows["customers"].column("customer_id").to_pylist())
    ids = [customer_id for customer_id in ids if customer_id in known]
    if not ids:
        return Scores.none()
    matrix, newest = matrix_and_newest_event_at_date(ids, as_of, rows, features)
    X = matrix[:, champion.columns]
    scores = predict(champion.booster, X, threads=None)  # the booster's threads: for_serving
    if not explain:
        return Scores(ids, scores, newest)
    shares = contributions(
        champion.booster, X, champion.feature_names, threads=EXPLAIN_MATRIX_THREADS
    )
    return Scores(ids, scores, newest, X, shares[:, :-1])


def _read(
    engine: Engine,
    settings: Settings,
    ids: Sequence[str],
    as_of: date,
    *,
    bulk: bool,
    snapshot: str | None = None,
) -> Mapping[str, pa.Table]:
    if not bulk:
        with engine.connect() as connection:  # given back before the features are computed
            return read_at_date(connection, ids, as_of)
    observations = pl.DataFrame({"customer_id": pl.Series(ids, dtype=pl.String)}).with_columns(
        observation_date=pl.lit(as_of, dtype=pl.Date)
    )
    return read_inputs(engine, observations, settings, snapshot=snapshot)


def risk_band(value: float, bands: tuple[float, float]) -> str:
    """``low`` below the first limit, ``medium`` below the second, else ``high``."""
    return "low" if value < bands[0] else "medium" if value < bands[1] else "high"


def risk_bands(scores: np.ndarray, bands: tuple[float, float]) -> list[str]:
    """``risk_band`` of each score, in one pass."""
    positions = np.searchsorted(np.asarray(bands), scores, side="right")
    return np.asarray(BANDS)[positions].tolist()  # type: ignore[no-any-return]


def score_customers(
    engine: Engine,
    settings: Settings,
    *,
    as_of: date,
    customer_ids: pl.Series | None = None,
    progress: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """``customer_id``, ``risk_score``, ``model_version`` for each customer as of ``as_of``
    (default: every customer first seen before it), sorted by id, then the data's freshness:
    ``last_event_at`` (the newest event the features used) and ``data_age_days`` (see
    :mod:`predelinq.features.freshness`). Asked ids the database lacks are left out; when it
    has none of them, ``NoKnownCustomerError``.
    Raises ``NoChampionError``, or ``ArtifactError`` (naming the version and the fix) when
    the champion's artifact is missing or fails verification. ``progress`` is called with
    the name of each stage as it starts. With ``log_predictions`` the scores are logged
    (source ``score``, one request id for the run) in one bulk write, and logged rows past
    ``prediction_retention_days`` deleted."""
    features = configured_features(settings)
    loaded = load_champion(engine, settings.model_dir, features)  # before any work
    if loaded is None:
        raise NoChampionError("no champion model yet: run `predelinq check` or `retrain`")
    champion = for_serving(loaded, settings)
    if customer_ids is None:
        ids = customers_as_of(engine, as_of)
    else:
        ids = pl.Series("customer_id", customer_ids, dtype=pl.String).unique()
    asked = ids.sort().to_list()
    if progress:
        progress(f"features and scores of {len(asked):,} customers")
    if settings.dask_scheduler:
        scored = _score_on_cluster(engine, settings, champion, features, asked, as_of)
    else:
        scored = score(engine, settings, champion, features, asked, as_of, bulk=True)
    if customer_ids is not None and asked and not scored.ids:
        raise NoKnownCustomerError(f"none of the {len(asked):,} customer ids is stored")
    if settings.log_predictions:
        log_scores(
            engine,
            customer_ids=scored.ids,
            as_of=as_of,
            model_version=champion.version,
            scores=scored.scores,
            bands=risk_bands(scored.scores, settings.risk_bands),
            source=PredictionSource.SCORE,
            request_id=str(uuid.uuid4()),
            retention_days=settings.prediction_retention_days,
        )
    return pl.DataFrame(
        [
            pl.Series("customer_id", scored.ids, dtype=pl.String),
            pl.Series("risk_score", scored.scores, dtype=pl.Float64),
            pl.Series("model_version", [champion.version] * len(scored.ids), dtype=pl.String),
            *freshness_columns(scored.newest_event_us, as_of),
        ]
    )


def _score_on_cluster(
    engine: Engine,
    settings: Settings,
    champion: Champion,
    features: FeatureSet,
    ids: list[str],
    as_of: date,
) -> Scores:
    """``score`` of each partition of ``ids`` on the cluster's workers, in ``ids``' order
    (sorted, as ``score_customers`` asks)."""
    from predelinq.scaleout import cluster_failures, dask_mode, score_on_cluster

    with dask_mode(engine, settings) as cluster, cluster_failures(cluster):
        assert cluster is not None
        work = partial(_score_partition, champion=champion, features=features, as_of=as_of)
        merged = Scores.concat(score_on_cluster(cluster, engine, settings, ids, work))
    order = np.argsort(np.asarray(merged.ids, dtype=object), kind="stable")
    return Scores(
        [merged.ids[k] for k in order], merged.scores[order], merged.newest_event_us[order]
    )


def _score_partition(
    engine: Engine,
    settings: Settings,
    ids: list[str],
    snapshot: str | None,
    *,
    champion: Champion,
    features: FeatureSet,
    as_of: date,
) -> Scores:
    """On a worker: the serving path's ``score`` of one partition's customers."""
    serving = for_serving(champion, settings)
    return score(engine, settings, serving, features, ids, as_of, bulk=True, snapshot=snapshot)
