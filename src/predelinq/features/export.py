"""Feature export: one row per customer as of a date, written as CSV or Parquet."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from predelinq.config import Settings
from predelinq.db import schema
from predelinq.db.readers import read_inputs
from predelinq.errors import PredelinqError
from predelinq.features.declarations import FeatureSet
from predelinq.features.online import features_at_date
from predelinq.features.parse import configured_features


def customers_as_of(engine: Engine, as_of: date) -> pl.Series:
    """Ids of the customers first seen before ``as_of``."""
    query = select(schema.customers.c.customer_id).where(
        schema.customers.c.created_at < datetime.combine(as_of, datetime.min.time())
    )
    with engine.connect() as connection:
        ids = connection.execute(query).scalars().all()
    return pl.Series("customer_id", ids, dtype=pl.String)


class CustomerIdsError(PredelinqError, ValueError):
    """An ids file that cannot be read, has no ``customer_id`` column, or holds no id."""


def read_customer_ids(path: Path) -> pl.Series:
    """Customer ids from a CSV or Parquet file with a ``customer_id`` column, or a text file
    with one id per line. Raises ``CustomerIdsError`` naming the file and what is wrong."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            ids = _id_column(path, pl.read_parquet_schema(path))
            series = pl.read_parquet(path, columns=[ids])[ids]
        elif suffix == ".csv":
            header = pl.read_csv(path, infer_schema=False, n_rows=0).columns
            ids = _id_column(path, dict.fromkeys(header))
            series = pl.read_csv(path, infer_schema=False, columns=[ids])[ids]
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            series = pl.Series([line.strip() for line in lines if line.strip()], dtype=pl.String)
    except pl.exceptions.NoDataError:
        raise CustomerIdsError(f"{path}: the file is empty; it needs customer ids") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise CustomerIdsError(
            f"{path}: cannot be read ({reason or type(error).__name__})"
        ) from None
    if not series.dtype.is_numeric() and series.dtype != pl.String:
        raise CustomerIdsError(f"{path}: customer_id must be text or numbers, not {series.dtype}")
    series = series.cast(pl.String).drop_nulls().rename("customer_id")
    if series.is_empty():
        raise CustomerIdsError(f"{path}: no customer ids in the file")
    return series


def _id_column(path: Path, columns: Mapping[str, object]) -> str:
    """The ``customer_id`` column, matched case-insensitively as the ingest contract does."""
    found = [name for name in columns if name.strip().lower() == "customer_id"]
    if len(found) != 1:
        problem = "has no customer_id column" if not found else "has several customer_id columns"
        raise CustomerIdsError(f"{path}: {problem} (columns: {', '.join(list(columns)[:10])})")
    return found[0]


class NoKnownCustomerError(PredelinqError, ValueError):
    """None of the asked customer ids is a stored customer."""


def features_as_of(
    engine: Engine,
    settings: Settings,
    as_of: date,
    customer_ids: pl.Series | list[str] | None = None,
    features: FeatureSet | None = None,
    *,
    freshness: bool = False,
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
    inputs = read_inputs(engine, observations, settings)
    if customer_ids is not None:
        stored = pl.Series(inputs["customers"].column("customer_id")).cast(pl.String)
        observations = observations.filter(pl.col("customer_id").is_in(stored.implode()))
        if observations.is_empty() and ids.len():
            raise NoKnownCustomerError(f"none of the {ids.len():,} customer ids is stored")
    features = features or configured_features(settings)
    ids_known = observations["customer_id"].to_list()
    return features_at_date(ids_known, as_of, inputs, features, freshness=freshness)


def export_features(
    engine: Engine,
    *,
    as_of: date,
    output_path: Path,
    customer_ids: pl.Series | None = None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """Features of each customer as of ``as_of`` (default: every customer seen before it);
    ``progress`` is called with the name of each stage as it starts."""
    if progress:
        progress("features")
    features = features_as_of(engine, settings, as_of, customer_ids)
    if progress:
        progress(f"writing {features.height:,} rows")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".parquet":
        features.write_parquet(output_path)
    else:
        features.write_csv(output_path)
    return features
