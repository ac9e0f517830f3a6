"""The retraining tests' lender: larger than the standard one (tests/conftest.py), so the
gate has unseen customers to judge on, with the seed's default of 200 customers per retrain.
``synthetic`` and ``loaded`` override the standard fixtures of the same names here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from predelinq.config import Settings
from predelinq.db import open_database
from support.databases import Database
from support.synthetic import Loaded, Synthetic, load_synthetic, write_synthetic


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """320 customers, about 2,000 labelled rows, written as Parquet once."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic-320"), customers=320, seed=21)


@pytest.fixture
def loaded(database: Database, synthetic: Synthetic, tmp_path: Path) -> Loaded:
    """The database with the 320 customers; settings with models under the test's directory,
    two threads and the default number of customers per retrain."""
    return load_synthetic(database, synthetic, model_dir=tmp_path / "models", threads=2)


@pytest.fixture
def postgres_loaded(
    postgres_schema_url: str, synthetic: Synthetic, tmp_path: Path
) -> Iterator[Loaded]:
    """Like ``loaded``, on PostgreSQL only (for the seed's SQL, which uses ``::text``)."""
    engine = open_database(Settings(database_url=postgres_schema_url))
    database = Database("postgres", postgres_schema_url, engine)
    yield load_synthetic(database, synthetic, model_dir=tmp_path / "models", threads=2)
    engine.dispose()
