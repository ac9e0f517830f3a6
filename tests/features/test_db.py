"""compute_features reads from the database: the same features on SQLite and PostgreSQL as
straight from the frames that were ingested."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from predelinq.config import Settings
from predelinq.db.readers import read_at_date
from predelinq.features import (
    compute_features,
    feature_set,
    features_at_date,
    features_for_observations,
)
from predelinq.features.export import features_as_of

FEATURES = feature_set()
FEATURE_NAMES = FEATURES.names


def test_database_read_gives_the_frames_features(loaded_csv):
    database, data = loaded_csv.database, loaded_csv.data
    observations = data.labels.select("customer_id", "observation_date").sample(
        fraction=1.0, shuffle=True, seed=3
    )
    timings: dict[str, float] = {}

    from_db = compute_features(
        database.engine,
        observations,
        settings=Settings(database_url=database.url, threads=2),
        timings=timings,
    )
    inputs = {
        "customers": data.customers,
        "transactions": data.transactions,
        "payments": data.payments,
    }
    from_frames = features_for_observations(observations, inputs, FEATURES)

    assert from_db.select("customer_id", "observation_date").equals(
        observations.select("customer_id", "observation_date")
    )
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(
            from_db[name].to_numpy(),
            from_frames[name].to_numpy(),
            rtol=1e-9,
            atol=1e-9,
            err_msg=name,
        )
    assert set(timings) == {"read", "compute"}


def test_only_selected_customers_are_read(loaded_csv):
    from predelinq.features import read_inputs

    database, data = loaded_csv.database, loaded_csv.data
    chosen = data.labels.filter(pl.col("customer_id").is_in(["C11-000003", "C11-000007"]))
    observations = chosen.select("customer_id", "observation_date")
    inputs = read_inputs(database.engine, observations, loaded_csv.settings)
    for table in inputs.values():
        assert set(table.column("customer_id").to_pylist()) <= {"C11-000003", "C11-000007"}


def test_parallel_read_returns_the_same_rows(loaded_csv):
    from predelinq.features import read_inputs

    database, data = loaded_csv.database, loaded_csv.data
    observations = data.labels.select("customer_id", "observation_date")
    large = {"large_read_customers": 1}  # SQLite: read in the child process
    one = loaded_csv.settings.model_copy(update={**large, "read_connections": 1})
    three = loaded_csv.settings.model_copy(update={**large, "read_connections": 3})
    single = read_inputs(database.engine, observations, one)
    parallel = read_inputs(database.engine, observations, three)
    for name, table in single.items():
        key = [(column, "ascending") for column in table.column_names[:2]]
        assert parallel[name].sort_by(key).equals(table.sort_by(key)), name
    latest = observations.group_by("customer_id").agg(pl.col("observation_date").max())
    expected = data.transactions.join(latest, on="customer_id").filter(
        pl.col("txn_time") < pl.col("observation_date").cast(pl.Datetime("us"))
    )
    assert parallel["transactions"].num_rows == expected.height


# the last: every transaction is over 180 days old
@pytest.mark.parametrize("as_of", [date(2024, 3, 1), date(2024, 11, 17), date(2025, 9, 1)])
def test_one_date_scoring_path_gives_the_training_paths_features(loaded_csv, as_of):
    """``features_as_of`` (the online engine, one date; what scoring and the API use) against
    ``compute_features`` (the historical engine; what training uses), through both readers:
    a model trained on one is served with the other."""
    database, data = loaded_csv.database, loaded_csv.data
    settings = Settings(database_url=database.url, threads=2)
    ids = sorted(data.customers["customer_id"].to_list())[:60] + ["not-a-customer"]
    observations = pl.DataFrame({"customer_id": sorted(ids)}).with_columns(
        observation_date=pl.lit(as_of, dtype=pl.Date)
    )
    expected = compute_features(database.engine, observations, settings=settings)

    bulk = features_as_of(database.engine, settings, as_of, ids)
    with database.engine.connect() as connection:
        inputs = read_at_date(connection, sorted(ids), as_of)
    selected = features_at_date(sorted(ids), as_of, inputs, FEATURES)

    # features_as_of leaves out the unknown id; the engine gives it a row of NaN
    known = expected.filter(pl.col("customer_id") != "not-a-customer")
    for got, want in ((bulk, known), (selected, expected)):
        assert got.select("customer_id", "observation_date").equals(
            want.select("customer_id", "observation_date")
        )
        for name in FEATURE_NAMES:
            np.testing.assert_allclose(
                got[name].to_numpy(), want[name].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=name
            )
    assert inputs["customers"].num_rows == 60  # the unknown id has no row, and no error
