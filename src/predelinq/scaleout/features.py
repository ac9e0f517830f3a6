"""Features on the workers: observations split by customer into partitions, each read from
PostgreSQL and computed by one worker task with the local path's own reader and engine
(``compute_features``), every partition in one database snapshot.

The client sends each task only its keys (customer id, observation date); the events and the
feature rows stay on the workers. What the trainer needs comes back as Dask arrays of chosen
rows (``PartitionedFeatures.rows_of``); ``gather`` brings every row to the client, for small
data and for tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl
import xgboost as xgb
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db.engine import create_db_engine
from predelinq.features.compute import compute_features
from predelinq.features.declarations import FeatureSet
from predelinq.modeling.booster import predict

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client, Future

    from predelinq.scaleout.cluster import Cluster

T = TypeVar("T")
HASH_SEED = 0x70726564  # the partition of a customer: a hash of its id with this seed


def partition_of(customer_ids: pl.Series, partitions: int) -> np.ndarray:
    """Each id's partition in ``[0, partitions)``: a seeded hash, so one customer's rows are
    always together (its windows need all of its events)."""
    hashed = customer_ids.cast(pl.String).hash(seed=HASH_SEED).to_numpy()
    return (hashed % np.uint64(partitions)).astype(np.int64)


def partition_positions(customer_ids: pl.Series, partitions: int) -> list[np.ndarray]:
    """The positions of each non-empty partition's rows, in their order: one sort, not a
    pass over every row per partition."""
    partition = partition_of(customer_ids, partitions)
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(1, partitions))
    return [positions for positions in np.split(order, bounds) if positions.size]


def worker_url(engine: Engine) -> str:
    """The database URL the workers connect with: sent in each task, never logged."""
    return engine.url.render_as_string(hide_password=False)


def partition_count(customers: int, workers: int, per_partition: int) -> int:
    """Enough partitions for ``per_partition`` customers each, and one per worker at least."""
    return max(workers, math.ceil(customers / per_partition), 1)


@dataclass
class PartitionedFeatures:
    """Feature rows held by the workers: ``parts[k]`` is a future of a frame (customer_id,
    observation_date, every feature) whose rows are the observations at ``rows[k]``."""

    client: Client
    parts: list[Future[pl.DataFrame]]
    rows: list[np.ndarray]
    names: list[str]
    height: int

    def rows_of(
        self, wanted: np.ndarray, dtype: type[np.floating[Any]] = np.float64
    ) -> tuple[da.Array, np.ndarray]:
        """The feature matrix of the rows where ``wanted`` (a mask over the observations) is
        true, as a Dask array of one chunk per partition, and the observation of each of its
        rows (the order is the partitions', not the observations'). ``float32`` halves a
        training matrix; XGBoost reads float32 whatever it is given."""
        import dask.array as da

        chunks, order = [], []
        for part, rows, local in self._chosen(wanted):
            matrix = self.client.submit(_matrix, part, self.names, local, dtype, pure=False)
            shape = (local.size, len(self.names))
            chunks.append(da.from_delayed(matrix, shape=shape, dtype=dtype))
            order.append(rows[local])
        if not chunks:
            return da.empty((0, len(self.names)), dtype=dtype), np.empty(0, dtype=np.int64)
        return da.concatenate(chunks), np.concatenate(order)

    def predict(
        self,
        booster: xgb.Booster,
        wanted: np.ndarray,
        *,
        columns: list[int] | None = None,
    ) -> np.ndarray:
        """``booster``'s scores (``modeling.booster.predict``) of the rows where ``wanted`` is
        true (NaN elsewhere), in the observations' order, each partition scored where it is
        held; ``columns``: the booster's features among ``names`` (default all)."""
        shared = self.client.scatter(booster, broadcast=True, hash=False)
        futures, order = [], []
        for part, rows, local in self._chosen(wanted):
            futures.append(
                self.client.submit(_predict, part, self.names, local, shared, columns, pure=False)
            )
            order.append(rows[local])
        scores = np.full(self.height, np.nan)
        if futures:
            scores[np.concatenate(order)] = np.concatenate(self.client.gather(futures))
        return scores

    def gather(self) -> pl.DataFrame:
        """Every row, in the observations' order, on the client."""
        frames = self.client.gather(self.parts)
        order = np.argsort(np.concatenate(self.rows), kind="stable")
        return pl.concat(frames).select(pl.all().gather(order))

    def _chosen(self, wanted: np.ndarray) -> Iterator[tuple[Future[Any], np.ndarray, np.ndarray]]:
        """Each partition with chosen rows: its future, its rows, the chosen ones' places."""
        for part, rows in zip(self.parts, self.rows, strict=True):
            local = np.flatnonzero(wanted[rows])
            if local.size:
                yield part, rows, local


def partitioned_features(
    cluster: Cluster,
    engine: Engine,
    observations: pl.DataFrame,
    *,
    settings: Settings,
    features: FeatureSet,
) -> PartitionedFeatures:
    """Every partition's features, computed on the workers and left there (this waits until
    they are; a partition whose task failed raises here)."""
    from distributed import wait

    client, snapshot = cluster.client, cluster.snapshot
    workers = len(client.scheduler_info()["workers"])
    count = partition_count(
        observations["customer_id"].n_unique(), workers, settings.dask_partition_customers
    )
    url = worker_url(engine)
    parts, rows = [], []
    for positions in partition_positions(observations["customer_id"], count):
        keys = observations.select("customer_id", "observation_date")[positions]
        parts.append(
            client.submit(
                _features_of_partition, url, keys, settings, features, snapshot, pure=False
            )
        )
        rows.append(positions)
    wait(parts)
    for part in parts:
        if part.status == "error":
            part.result()  # raises the worker's error
    return PartitionedFeatures(client, parts, rows, list(features.names), observations.height)


def _features_of_partition(
    url: str,
    observations: pl.DataFrame,
    settings: Settings,
    features: FeatureSet,
    snapshot: str | None,
) -> pl.DataFrame:
    """On a worker: the partition's rows read from the database, and their features."""
    return on_worker(
        url,
        settings,
        lambda engine, local: compute_features(
            engine, observations, settings=local, features=features, snapshot=snapshot
        ),
    )


def on_worker(url: str, settings: Settings, work: Callable[[Engine, Settings], T]) -> T:
    """On a worker: ``work`` with an engine of its own and the settings on the worker's
    threads (reads over as many connections)."""
    from distributed import get_worker

    threads = max(1, int(get_worker().state.nthreads))
    local = settings.model_copy(update={"threads": threads, "read_connections": threads})
    engine = create_db_engine(url, pool_size=1)
    try:
        return work(engine, local)
    finally:
        engine.dispose()


def gathered_features(
    engine: Engine, observations: pl.DataFrame, *, settings: Settings, features: FeatureSet
) -> pl.DataFrame:
    """``compute_features``, on the workers of ``settings.dask_scheduler`` when it is set
    (every row then gathered here: the backtest's replay needs them), else here."""
    from predelinq.scaleout.cluster import cluster_failures, dask_mode

    with dask_mode(engine, settings) as cluster, cluster_failures(cluster):
        if cluster is None:
            return compute_features(engine, observations, settings=settings, features=features)
        found = partitioned_features(
            cluster, engine, observations, settings=settings, features=features
        )
        return found.gather()


def _predict(
    frame: pl.DataFrame,
    names: list[str],
    local: np.ndarray,
    booster: xgb.Booster,
    columns: list[int] | None,
) -> np.ndarray:
    """On a worker: a booster's scores of some rows of a partition (its worker's threads)."""
    from distributed import get_worker

    X = _matrix(frame, names, local, np.float32)
    if columns is not None:
        X = X[:, columns]
    return predict(booster, X, threads=max(1, int(get_worker().state.nthreads)))


def _matrix(
    frame: pl.DataFrame,
    names: list[str],
    local: np.ndarray,
    dtype: type[np.floating[Any]] = np.float64,
) -> Any:
    """On a worker: the chosen rows of a partition's features, as a matrix."""
    return frame.select(names)[local].to_numpy().astype(dtype, copy=False)
