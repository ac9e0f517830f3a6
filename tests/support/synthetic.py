"""Synthetic lenders for tests: generated data and the files written from it
(``write_synthetic``), and those files ingested into a test's database with settings pointing
at it (``load_synthetic``). The fixtures that build them live in the conftest files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.ingest import ingest_files
from predelinq.retraining.run import retrain
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


# The drift acceptance lender (tests/monitoring): 1,500 customers over 20 months, 2024-01 to
# 2025-08, on SQLite, with a first model trained on every customer.
DRIFT_CUSTOMERS, DRIFT_MONTHS = 1_500, 20
DRIFT_SHIFT = date(2025, 4, 1)


def trained_lender(
    directory: Path, *, shift_from: date | None, labels_before: date | None
) -> tuple[Settings, Engine]:
    """The drift lender written, ingested and trained under ``directory`` (labels observed
    before ``labels_before`` only, when given); its settings and engine."""
    data = generate(n_customers=DRIFT_CUSTOMERS, seed=5, months=DRIFT_MONTHS, shift_from=shift_from)
    if labels_before is not None:
        data = replace(data, labels=data.labels.filter(pl.col("observation_date") < labels_before))
    settings = Settings(
        database_url=f"sqlite:///{directory / 'lender.db'}",
        model_dir=directory / "models",
        threads=2,
        max_customers="all",
    )
    engine = open_database(settings)
    ingest_files(engine, write(data, directory / "files", file_format="parquet"))
    assert retrain(engine, settings, reason="first model", seed=1).promoted
    return settings, engine
