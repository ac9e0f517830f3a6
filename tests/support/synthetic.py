"""Synthetic lenders for tests: generated data and the files written from it
(``write_synthetic``), and those files ingested into a test's database with settings pointing
at it (``load_synthetic``). The fixtures that build them live in the conftest files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.ingest import ingest_files
from predelinq.synth import SyntheticData, generate, write
from support.databases import Database

# The standard lender of the tests that need "some customers with a history and labels":
# 969 labelled rows (16% positive), enough for a first model well above chance, quick to train.
CUSTOMERS = 160
SEED = 31


@dataclass(frozen=True)
class Synthetic:
    """Generated data and its files, shared by many tests: copy before changing either."""

    data: SyntheticData
    files: dict[str, Path]  # table name -> file, as ``ingest_files`` takes them


@dataclass(frozen=True)
class Loaded:
    """A database holding a synthetic lender, and settings pointing at it."""

    database: Database
    synthetic: Synthetic
    settings: Settings

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def data(self) -> SyntheticData:
        return self.synthetic.data


def write_synthetic(
    directory: Path,
    *,
    customers: int = CUSTOMERS,
    seed: int = SEED,
    file_format: str = "parquet",
) -> Synthetic:
    data = generate(n_customers=customers, seed=seed)
    return Synthetic(data, write(data, directory, file_format=file_format))


def load_synthetic(database: Database, synthetic: Synthetic, **settings: Any) -> Loaded:
    """Ingest the files; ``settings`` are the fields set besides the database URL."""
    ingest_files(database.engine, synthetic.files)
    return Loaded(database, synthetic, Settings(database_url=database.url, **settings))
