"""The feature tests' lender read back from a database: a small synthetic one written as CSV,
so the features read from the database must equal the frames' whatever the CSV ingest had to
parse."""

from __future__ import annotations

import pytest

from support.databases import Database
from support.synthetic import Loaded, Synthetic, load_synthetic, write_synthetic


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """120 customers, ids ``C11-000000`` to ``C11-000119``, written as CSV once."""
    directory = tmp_path_factory.mktemp("synthetic-csv")
    return write_synthetic(directory, customers=120, seed=11, file_format="csv")


@pytest.fixture
def loaded_csv(database: Database, synthetic_csv: Synthetic) -> Loaded:
    return load_synthetic(database, synthetic_csv, threads=2)
