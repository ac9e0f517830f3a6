"""The seed's retraining status: how many new customers wait, whether that reaches the
threshold, and the recent runs; and the labels no retrain has used (the ``new_labels``
trigger). SQL only, so that a ``check`` with nothing to do loads no data-frame or ML library
(its whole run is these queries)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, exists, false, func, not_, or_, select
from sqlalchemy.sql.selectable import Exists

from predelinq.config import Settings
from predelinq.db.schema import customer_training_status as status_table
from predelinq.db.schema import customers, labels, model_retraining_log


def labelled_customers() -> Exists:
    return exists().where(labels.c.customer_id == customers.c.customer_id)


def trained_customers() -> Exists:
    return exists().where(
        status_table.c.customer_id == customers.c.customer_id,
        status_table.c.included_in_training,
    )


def new_customer_count(connection: Connection) -> int:
    """Customers with at least one label not yet included in a completed retrain (one query)."""
    query = (
        select(func.count())
        .select_from(customers)
        .where(labelled_customers(), not_(trained_customers()))
    )
    return connection.execute(query).scalar_one()


def unused_labels() -> Exists:
    """The customer (of ``customers``) has a label stored or changed after their last retrain
    (``labels.ingested_at`` > ``last_trained``); labels older than the column count as used."""
    return exists().where(
        labels.c.customer_id == customers.c.customer_id,
        status_table.c.customer_id == customers.c.customer_id,
        labels.c.ingested_at > status_table.c.last_trained,
    )


def new_label_count(connection: Connection) -> int:
    """Labelled rows no retrain has used (one query): every label of a customer never trained
    on, and labels stored or changed after their customer's last retrain."""
    trained = status_table.c.included_in_training
    query = (
        select(func.count())
        .select_from(
            labels.outerjoin(status_table, status_table.c.customer_id == labels.c.customer_id)
        )
        .where(
            or_(
                func.coalesce(trained, false()) == false(),
                labels.c.ingested_at > status_table.c.last_trained,
            )
        )
    )
    return connection.execute(query).scalar_one()


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
