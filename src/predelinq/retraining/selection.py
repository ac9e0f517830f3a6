"""Which customers the model has learnt from: counting new ones, choosing whom to train on,
and recording them (the seed's ``customer_training_status``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite

from predelinq.db.bulk import stage_rows
from predelinq.db.schema import customer_training_status as status_table
from predelinq.db.schema import (
    customers,
    labels,
    model_training_customers,
)
from predelinq.retraining.status import labelled_customers, trained_customers, unused_labels

SELECTED = Table(
    "stage_selected_customers",
    MetaData(),
    Column("customer_id", customers.c.customer_id.type),
    prefixes=["TEMPORARY"],
)


def select_customers(
    engine: Engine, max_customers: int | Literal["all"], *, seed: int
) -> pl.DataFrame:
    """Labelled customers: untrained first, then those with labels no retrain has used (the
    ``new_labels`` trigger's), then the rest; each group in seeded random order."""
    query = select(
        customers.c.customer_id,
        customers.c.created_at,
        trained_customers().label("trained"),
        unused_labels().label("unused"),
    ).where(labelled_customers())
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    candidates = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            "created_at": pl.Datetime("us"),
            "trained": pl.Boolean,
            "unused": pl.Boolean,
        },
        orient="row",
    ).sort("customer_id")
    order = np.random.default_rng(seed).permutation(candidates.height)
    ranked = candidates.with_columns(
        shuffle=pl.Series(order), used=pl.col("trained") & ~pl.col("unused")
    ).sort("trained", "used", "shuffle")
    limit = ranked.height if max_customers == "all" else max_customers
    return ranked.head(limit).drop("shuffle", "used", "unused")


def read_labels(engine: Engine, selected: pl.DataFrame) -> pl.DataFrame:
    """The selected customers' labels, sorted by customer and date (temporary-table join)."""
    with engine.begin() as connection:
        stage_rows(connection, SELECTED, selected.select("customer_id"))
        query = select(labels.c.customer_id, labels.c.observation_date, labels.c.label).join(
            SELECTED, SELECTED.c.customer_id == labels.c.customer_id
        )
        rows = connection.execute(query).all()
        SELECTED.drop(connection)
    schema = {"customer_id": pl.String, "observation_date": pl.Date, "label": pl.Int8}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("customer_id", "observation_date")


def mark_trained(
    connection: Connection,
    selected: pl.DataFrame,
    now: datetime,
    *,
    model_version: str,
    parts: pl.DataFrame,
) -> None:
    """Upsert every selected customer (held-out ones included) as included in training, and
    record them as ``model_version``'s customers with their part and whether its artifact
    learnt from them (``parts``: ``customer_id``, ``part``, ``learnt``)."""
    stage = Table(
        "stage_trained",
        MetaData(),
        Column("customer_id", customers.c.customer_id.type),
        Column("first_seen", DateTime),
        Column("part", String(16)),
        Column("learnt", Boolean),
        prefixes=["TEMPORARY"],
    )
    rows = selected.select("customer_id", first_seen="created_at").join(
        parts, on="customer_id", how="left", maintain_order="left"
    )
    stage_rows(connection, stage, rows)
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(status_table).from_select(
        ["customer_id", "first_seen", "last_trained", "included_in_training"],
        select(stage.c.customer_id, stage.c.first_seen, literal(now, DateTime), true()).where(
            true()
        ),
    )
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={"last_trained": statement.excluded.last_trained, "included_in_training": true()},
    )
    connection.execute(statement)
    version = literal(model_version, model_training_customers.c.model_version.type)
    connection.execute(
        model_training_customers.insert().from_select(
            ["model_version", "customer_id", "part", "learnt"],
            select(version, stage.c.customer_id, stage.c.part, stage.c.learnt),
        )
    )
    stage.drop(connection)


def training_customers(connection: Connection, model_version: str) -> pl.Series | None:
    """The customers ``model_version``'s artifact learnt from; None for versions that predate
    the record."""
    table = model_training_customers
    query = select(table.c.customer_id).where(
        table.c.model_version == model_version, table.c.learnt
    )
    ids = connection.execute(query).scalars().all()
    return pl.Series("customer_id", ids, dtype=pl.String) if ids else None
