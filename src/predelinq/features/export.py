"""Feature export: one row per customer as of a date, written as CSV or Parquet."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from predelinq.config import Settings
from predelinq.db import schema
from predelinq.features.declarations import FeatureSet, configured_features
from predelinq.features.online import features_at_date
from predelinq.features.read import read_inputs


def customers_as_of(engine: Engine, as_of: date) -> pl.Series:
    """Ids of the customers first seen before ``as_of``."""
    query = select(schema.customers.c.customer_id).where(
        schema.customers.c.created_at < datetime.combine(as_of, datetime.min.time())
    )
    with engine.connect() as connection:
        ids = connection.execute(query).scalars().all()
    return pl.Series("customer_id", ids, dtype=pl.String)


def read_customer_ids(path: Path) -> pl.Series:
    """Customer ids from a CSV or Parquet file with a ``customer_id`` column, or a text file
    with one id per line."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path, columns=["customer_id"])["customer_id"].cast(pl.String)
    if suffix == ".csv":
        frame = pl.read_csv(path, infer_schema=False, columns=["customer_id"])
        return frame["customer_id"]
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pl.Series("customer_id", ids, dtype=pl.String)


class NoKnownCustomerError(ValueError):
    """None of the asked customer ids is a stored customer."""


def features_as_of(
    engine: Engine,
    settings: Settings,
    as_of: date,
    customer_ids: pl.Series | list[str] | None = None,
    features: FeatureSet | None = None,
) -> pl.DataFrame:
    """Features of each customer as of ``as_of``, sorted by customer id; by default every
    customer first seen before ``as_of``. One date for everyone: the online engine, which
    agrees with the historical one (``compute_features``) on every feature.

    Asked ids that are not stored customers are left out (the caller lists them); when none
    is stored, ``NoKnownCustomerError``."""
    if customer_ids is None:
        ids = customers_as_of(engine, as_of)
    else:
        ids = pl.Series("customer_id", customer_ids, dtype=pl.String).unique()
    observations = pl.DataFrame({"customer_id": ids.sort()}).with_columns(
        observation_date=pl.lit(as_of, dtype=pl.Date)
    )
    inputs = read_inputs(settings.database_url, observations)
    if customer_ids is not None:
        stored = pl.Series(inputs["customers"].column("customer_id")).cast(pl.String)
        observations = observations.filter(pl.col("customer_id").is_in(stored.implode()))
        if observations.is_empty() and ids.len():
            raise NoKnownCustomerError(f"none of the {ids.len():,} customer ids is stored")
    features = features or configured_features(settings)
    return features_at_date(observations["customer_id"].to_list(), as_of, inputs, features)


def export_features(
    engine: Engine,
    *,
    as_of: date,
    output_path: Path,
    customer_ids: pl.Series | None = None,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Features of each customer as of ``as_of`` (default: every customer seen before it)."""
    features = features_as_of(engine, settings or Settings(), as_of, customer_ids)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".parquet":
        features.write_parquet(output_path)
    else:
        features.write_csv(output_path)
    return features
