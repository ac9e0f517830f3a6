"""``features_from_frames``: every feature for every observation in one DuckDB pass.

Pure computation: frames in, frame out. The input frames are registered with an in-process
DuckDB, normalised once (types, and only events before the latest observation date), the
shared building blocks of ``base.py`` are built, and each family's SQL is joined on the
observation. No Python loop over observations or customers.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TypeAlias

import duckdb
import polars as pl
import pyarrow as pa

from predelinq.features import activity, balance, base, cash, payments, profile, salary, spending
from predelinq.features.registry import Feature

FAMILY_MODULES: tuple[ModuleType, ...] = (
    payments,
    salary,
    balance,
    spending,
    cash,
    activity,
    profile,
)
FEATURES: tuple[Feature, ...] = tuple(f for module in FAMILY_MODULES for f in module.FEATURES)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

Frame: TypeAlias = pl.DataFrame | pa.Table

# Inputs arrive typed (polars) or as the database returns them (SQLite: text timestamps);
# these casts make both the same. Events at or after the latest t are dropped here.
NORMALISE_INPUTS = (
    """CREATE TEMP TABLE obs AS
    SELECT obs_id, CAST(customer_id AS VARCHAR) AS customer_id,
           CAST(observation_date AS DATE) AS t_date,
           CAST(CAST(observation_date AS DATE) AS TIMESTAMP) AS t
    FROM obs_input""",
    """CREATE TEMP TABLE cust AS
    SELECT CAST(customer_id AS VARCHAR) AS customer_id,
           CAST(created_at AS TIMESTAMP) AS created_at,
           CAST(monthly_income AS DOUBLE) AS monthly_income,
           CAST(salary_day AS INTEGER) AS salary_day,
           CAST(credit_limit AS DOUBLE) AS credit_limit
    FROM cust_input""",
    # prev_visit: the customer's previous debit at the same merchant; prev_day: the day of
    # the customer's previous transaction. They turn distinct counts into plain counts
    # (a merchant is new in a window when its previous visit is before the window starts).
    """CREATE TEMP TABLE txn AS
    SELECT *,
        lag(txn_time) OVER (PARTITION BY customer_id, merchant_id, txn_type ORDER BY txn_time)
            AS prev_visit,
        lag(CAST(txn_time AS DATE)) OVER (PARTITION BY customer_id ORDER BY txn_time)
            AS prev_day
    FROM (
        SELECT CAST(customer_id AS VARCHAR) AS customer_id,
               CAST(txn_time AS TIMESTAMP) AS txn_time, CAST(amount AS DOUBLE) AS amount,
               CAST(txn_type AS VARCHAR) AS txn_type, CAST(category AS VARCHAR) AS category,
               CAST(merchant_id AS VARCHAR) AS merchant_id, CAST(channel AS VARCHAR) AS channel
        FROM txn_input
    ) WHERE txn_time < (SELECT max(t) FROM obs)""",
    """CREATE TEMP TABLE pay AS
    SELECT * FROM (
        SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(due_date AS DATE) AS due_date,
               CAST(amount_due AS DOUBLE) AS amount_due,
               CAST(amount_paid AS DOUBLE) AS amount_paid, CAST(paid_date AS DATE) AS paid_date
        FROM pay_input
    ) WHERE due_date < (SELECT max(t_date) FROM obs)""",
)


def features_from_frames(
    observations: pl.DataFrame,
    *,
    customers: Frame,
    transactions: Frame,
    payments: Frame,
    threads: int | None = None,
) -> pl.DataFrame:
    """Features for each ``(customer_id, observation_date)`` row, in the same order.

    Returns ``customer_id``, ``observation_date`` and every feature of ``FEATURES`` as
    Float64, missing values as NaN. Only events strictly before each observation date count.
    """
    obs_input = observations.select("customer_id", "observation_date").with_row_index("obs_id")
    with duckdb.connect(config={"threads": threads or os.cpu_count() or 1}) as con:
        for name, frame in (
            ("obs_input", obs_input),
            ("cust_input", customers),
            ("txn_input", transactions),
            ("pay_input", payments),
        ):
            con.register(name, frame)
        for statement in (*NORMALISE_INPUTS, *base.BUILD_STEPS):
            con.execute(statement)
        result = con.sql(_joined_families_sql()).pl()
    return _as_float_features(result)


def _joined_families_sql() -> str:
    joins = "\n".join(
        f"LEFT JOIN ({module.SQL}) f{k} USING (obs_id)" for k, module in enumerate(FAMILY_MODULES)
    )
    return f"""
    SELECT o.customer_id, o.t_date AS observation_date, {", ".join(FEATURE_NAMES)}
    FROM obs o
    {joins}
    ORDER BY o.obs_id
    """


def _as_float_features(result: pl.DataFrame) -> pl.DataFrame:
    return result.with_columns(
        pl.col(name).cast(pl.Float64).fill_null(float("nan")) for name in FEATURE_NAMES
    )
