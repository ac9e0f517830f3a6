"""A real Dask cluster (``dask scheduler`` and two ``dask worker`` processes, started here) and
a lender of a few thousand customers in PostgreSQL, for the scale-out tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from predelinq.config import Settings
from predelinq.db import open_database
from support.dask_cluster import DaskProcesses, start_cluster
from support.databases import Database, postgres_schema
from support.synthetic import Loaded, Synthetic, load_synthetic, write_synthetic

# A few thousand customers: 2,000 give about 12,000 labelled rows, above cv_max_rows (5,000),
# so a retrain on the cluster trains with xgboost.dask.
CUSTOMERS, SEED = 2_000, 5


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    """A scheduler and two single-threaded workers, shared by the tests that kill none."""
    with start_cluster(tmp_path_factory.mktemp("dask"), workers=2) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def thousands(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return write_synthetic(tmp_path_factory.mktemp("thousands"), customers=CUSTOMERS, seed=SEED)


@pytest.fixture
def lender(postgres_url: str, thousands: Synthetic, tmp_path: Path) -> Iterator[Loaded]:
    """The lender in a new PostgreSQL schema, no model yet; two threads, every customer."""
    with postgres_schema(postgres_url) as url:
        engine = open_database(Settings(database_url=url))
        loaded = load_synthetic(
            Database("postgres", url, engine),
            thousands,
            model_dir=tmp_path / "models",
            threads=2,
            max_customers="all",
        )
        yield loaded
        engine.dispose()
