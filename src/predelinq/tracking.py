"""Which customers the model has learnt from: counting new ones, choosing whom to train on,
and recording them (the seed's ``customer_training_status``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    exists,
    func,
    literal,
    not_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import Exists

from predelinq.config import Settings
from predelinq.db.bulk import stage_rows
from predelinq.db.schema import customer_training_status as status_table
from predelinq.db.schema import (
    customers,
    labels,
    model_retraining_log,
    model_training_customers,
)

SELECTED = Table(
    "stage_selected_customers",
    MetaData(),
    Column("customer_id", customers.c.customer_id.type),
    prefixes=["TEMPORARY"],
)


def _labelled() -> Exists:
    return exists().where(labels.c.customer_id == customers.c.customer_id)


def _trained() -> Exists:
    return exists().where(
        status_table.c.customer_id == customers.c.customer_id,
        status_table.c.included_in_training,
    )


def new_customer_count(connection: Connection) -> int:
    """Customers with at least one label not yet included in a completed retrain (one query)."""
    query = select(func.count()).select_from(customers).where(_labelled(), not_(_trained()))
    return connection.execute(query).scalar_one()


def select_customers(
    engine: Engine, max_customers: int | Literal["all"], *, seed: int
) -> pl.DataFrame:
    """Labelled customers, untrained first, then the rest, each group in seeded random order."""
    query = select(
        customers.c.customer_id, customers.c.created_at, _trained().label("trained")
    ).where(_labelled())
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    candidates = pl.DataFrame(
        rows,
        schema={"customer_id": pl.String, "created_at": pl.Datetime("us"), "trained": pl.Boolean},
        orient="row",
    ).sort("customer_id")
    order = np.random.default_rng(seed).permutation(candidates.height)
    ranked = candidates.with_columns(shuffle=pl.Series(order)).sort("trained", "shuffle")
    limit = ranked.height if max_customers == "all" else max_customers
    return ranked.head(limit).drop("shuffle")


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


def recent_retraining(connection: Connection, limit: int = 5) -> list[dict[str, Any]]:
    log = model_retraining_log
    rows = connection.execute(select(log).order_by(log.c.retrain_id.desc()).limit(limit))
    return [_log_row(row._mapping) for row in rows]


def _log_row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["retrain_date"] = out["retrain_date"].isoformat(timespec="seconds")
    return out


def retraining_status(engine: Engine, settings: Settings, *, history: int = 5) -> dict[str, Any]:
    """The seed's status response: count, whether needed, why, threshold, recent runs."""
    with engine.connect() as connection:
        count = new_customer_count(connection)
        recent = recent_retraining(connection, history)
    needed = count >= settings.new_customer_threshold
    seed_keys = ("retrain_id", "retrain_date", "customers_trained", "samples_trained")
    return {
        "new_customers_count": count,
        "retraining_needed": needed,
        "reason": f"New customers: {count}"
        if needed
        else f"New customers: {count} (below threshold)",
        "threshold": settings.new_customer_threshold,
        "recent_retraining": [
            {key: row[key] for key in (*seed_keys, "auc_score", "model_version")} for row in recent
        ],
    }
