"""Scoring on the cluster (``predelinq score`` in Dask mode): the customer ids hashed into
partitions, each scored on a worker that reads its customers from PostgreSQL, by the scoring
function the caller passes (``serving/score.py`` passes its own path, with the champion);
only the scores come back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import polars as pl
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.scaleout.cluster import Cluster
from predelinq.scaleout.features import (
    on_worker,
    partition_count,
    partition_positions,
    worker_url,
)

T = TypeVar("T")
ScorePartition = Callable[[Engine, Settings, list[str], str | None], T]


def score_on_cluster(
    cluster: Cluster,
    engine: Engine,
    settings: Settings,
    ids: list[str],
    score_partition: ScorePartition[T],
) -> list[T]:
    """``score_partition(engine, settings, ids, snapshot)`` for each partition of ``ids``
    (each partition's ids in their order here), on the workers; the results, partition by
    partition."""
    client = cluster.client
    workers = len(client.scheduler_info()["workers"])
    count = partition_count(len(ids), workers, settings.dask_partition_customers)
    series = pl.Series("customer_id", ids, dtype=pl.String)
    url = worker_url(engine)
    futures = [
        client.submit(
            _score_on_worker,
            url,
            settings,
            score_partition,
            series.gather(positions).to_list(),
            cluster.snapshot,
            pure=False,
        )
        for positions in partition_positions(series, count)
    ]
    return list(client.gather(futures))


def _score_on_worker(
    url: str,
    settings: Settings,
    score_partition: ScorePartition[T],
    ids: list[str],
    snapshot: str | None,
) -> T:
    return on_worker(
        url, settings, lambda engine, local: score_partition(engine, local, ids, snapshot)
    )
