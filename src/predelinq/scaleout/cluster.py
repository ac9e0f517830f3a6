"""The Dask cluster a run uses: a scheduler's address (``tcp://host:8786``), or ``local`` for a
``LocalCluster`` of worker processes on this machine.

Dask mode reads on the workers, so the database must be one they can reach: PostgreSQL. An
SQLite file is on this machine only, and is refused before anything runs. A scheduler that
cannot be reached is a ``SchedulerUnavailableError`` (the CLI's exit 3, as for a database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db.readers.inputs import exported_snapshot
from predelinq.errors import PredelinqError

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
CONNECT_SECONDS = 10  # a scheduler that answers takes milliseconds


class DaskModeError(PredelinqError):
    """Dask mode cannot run with these settings: SQLite, or the dask extra not installed."""


class SchedulerUnavailableError(PredelinqError):
    """The Dask scheduler did not answer at its address."""


class ClusterError(PredelinqError):
    """The cluster failed during a run (a worker lost for good, a task that kept failing)."""


def require_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise DaskModeError(
            f"Dask mode needs PostgreSQL: its workers read the database themselves, and "
            f"{engine.dialect.name} is a file on this machine only (set DATABASE_URL to a "
            "postgresql:// URL, or run without PREDELINQ_DASK_SCHEDULER / --dask-scheduler)"
        )


@contextmanager
def dask_client(address: str, *, workers: int) -> Iterator[Client]:
    """A client of the scheduler at ``address``; ``local``: of a new ``LocalCluster`` of
    ``workers`` single-threaded processes, closed afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise DaskModeError(
            "Dask mode needs the dask extra: pip install 'predelinq[dask]'"
        ) from error
    if address == LOCAL:
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except ValueError as error:  # not an address at all: the user's setting, not the network
        raise DaskModeError(
            f"{address!r} is not a Dask scheduler address: give tcp://host:8786, or 'local' "
            f"({error})"
        ) from error
    except (OSError, TimeoutError) as error:
        raise SchedulerUnavailableError(
            f"no Dask scheduler answered at {address} within {CONNECT_SECONDS} s ({error})"
        ) from error
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except TimeoutError as error:
            raise SchedulerUnavailableError(
                f"the Dask scheduler at {address} has no worker ({CONNECT_SECONDS} s waited)"
            ) from error
        yield client


@dataclass(frozen=True)
class Cluster:
    """A run's cluster: the client, and the database snapshot every partition reads."""

    client: Client
    snapshot: str


@contextmanager
def dask_mode(engine: Engine, settings: Settings) -> Iterator[Cluster | None]:
    """The cluster of ``settings.dask_scheduler`` for the block, or None without one.

    The snapshot stays exported for the whole block, so a partition Dask computes again
    (its worker was lost) reads what the others read."""
    if not settings.dask_scheduler:
        yield None
        return
    require_postgres(engine)
    with (
        dask_client(settings.dask_scheduler, workers=settings.threads) as client,
        exported_snapshot(engine) as snapshot,
    ):
        yield Cluster(client, snapshot)


@contextmanager
def cluster_failures(cluster: Cluster | None) -> Iterator[None]:
    """With a cluster, any failure of it inside the block (a worker lost for good, a task
    failing on every try, the collective timing out) leaves it as a ``ClusterError``, which
    fails the run cleanly; predelinq's own errors pass as they are. Without one: nothing."""
    try:
        yield
    except PredelinqError:
        raise
    except Exception as error:
        if cluster is None:
            raise  # a worker's failure arrives as any type
        raise ClusterError(f"the Dask cluster failed: {type(error).__name__}: {error}") from error
