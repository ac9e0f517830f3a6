"""Scale-out: features and training on a Dask cluster (``PREDELINQ_DASK_SCHEDULER``).

``cluster.py`` connects (or starts a ``LocalCluster``) and refuses what cannot work;
``features.py`` computes each customer partition's features on a worker, read straight from
PostgreSQL; ``train.py`` trains on those rows with ``xgboost.dask``; ``score.py`` scores
each partition on a worker. The gate, the registry and the log are the local path's
(``retraining/run.py``); the backtest computes its features on the workers and replays
here. Needs ``predelinq[dask]``; nothing here imports Dask until a run asks for it.
"""

from predelinq.scaleout.cluster import (
    Cluster,
    ClusterError,
    DaskModeError,
    SchedulerUnavailableError,
    cluster_failures,
    dask_mode,
)
from predelinq.scaleout.features import (
    PartitionedFeatures,
    gathered_features,
    partitioned_features,
)
from predelinq.scaleout.score import score_on_cluster
from predelinq.scaleout.train import fit_on_cluster

__all__ = [
    "Cluster",
    "ClusterError",
    "DaskModeError",
    "PartitionedFeatures",
    "SchedulerUnavailableError",
    "cluster_failures",
    "dask_mode",
    "fit_on_cluster",
    "gathered_features",
    "partitioned_features",
    "score_on_cluster",
]
