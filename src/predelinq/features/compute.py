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
INPUT_VIEWS = {"customers": "cust_input", "transactions": "txn_input", "payments": "pay_input"}

# Inputs arrive typed (polars) or as the database returns them (SQLite: text timestamps);
# these casts make both the same. Customers get a dense integer key ``k`` (joins and sorts on
# integers are several times cheaper than on text), only the observed customers' events are
# kept, events at or after the latest t are dropped, and every per-transaction flag the
# families need is computed once here rather than once per (observation, transaction) pair.
NORMALISE_INPUTS = (
    """CREATE TEMP TABLE keys AS
    SELECT customer_id, CAST(row_number() OVER () AS INTEGER) AS k
    FROM (SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM obs_input)""",
    """CREATE TEMP TABLE obs AS
    SELECT o.obs_id, k.k, k.customer_id, CAST(o.observation_date AS DATE) AS t_date,
           CAST(CAST(o.observation_date AS DATE) AS TIMESTAMP) AS t
    FROM obs_input o JOIN keys k ON k.customer_id = CAST(o.customer_id AS VARCHAR)""",
    """CREATE TEMP TABLE cust AS
    SELECT k.k, CAST(c.created_at AS TIMESTAMP) AS created_at,
           CAST(c.monthly_income AS DOUBLE) AS monthly_income,
           CAST(c.salary_day AS INTEGER) AS salary_day,
           CAST(c.credit_limit AS DOUBLE) AS credit_limit
    FROM cust_input c JOIN keys k ON k.customer_id = CAST(c.customer_id AS VARCHAR)""",
    # prev_visit: the customer's previous debit at the same merchant; first_of_day: the first
    # transaction of its day. They turn distinct counts into plain counts (a merchant is new
    # in a window when its previous visit is before the window starts).
    """CREATE TEMP TABLE txn AS
    SELECT k, txn_time, amount, debit, salary, discretionary, essential, atm, weekend,
        CASE WHEN debit THEN -amount ELSE amount END AS flow,
        debit AND merchant_id IS NOT NULL AS merchant_debit,
        lag(txn_time) OVER (PARTITION BY k, merchant_id, debit ORDER BY txn_time) AS prev_visit,
        coalesce(
            lag(CAST(txn_time AS DATE)) OVER (PARTITION BY k ORDER BY txn_time)
                < CAST(txn_time AS DATE),
            true
        ) AS first_of_day
    FROM (
        SELECT k.k, CAST(x.txn_time AS TIMESTAMP) AS txn_time, CAST(x.amount AS DOUBLE) AS amount,
            x.txn_type = 'debit' AS debit,
            x.txn_type = 'credit' AND x.category = 'salary' AS salary,
            x.category IN ('dining', 'entertainment', 'shopping') AS discretionary,
            x.category IN ('groceries', 'utilities', 'rent') AS essential,
            x.txn_type = 'debit' AND (x.channel = 'atm' OR x.category = 'cash') AS atm,
            dayofweek(CAST(x.txn_time AS TIMESTAMP)) IN (0, 6) AS weekend,
            CAST(x.merchant_id AS VARCHAR) AS merchant_id
        FROM txn_input x JOIN keys k ON k.customer_id = CAST(x.customer_id AS VARCHAR)
        WHERE CAST(x.txn_time AS TIMESTAMP) < (SELECT max(t) FROM obs)
    )""",
    """CREATE TEMP TABLE pay AS
    SELECT k.k, CAST(p.due_date AS DATE) AS due_date, CAST(p.amount_due AS DOUBLE) AS amount_due,
           CAST(p.amount_paid AS DOUBLE) AS amount_paid, CAST(p.paid_date AS DATE) AS paid_date
    FROM pay_input p JOIN keys k ON k.customer_id = CAST(p.customer_id AS VARCHAR)
    WHERE CAST(p.due_date AS DATE) < (SELECT max(t_date) FROM obs)""",
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
    inputs = {"customers": customers, "transactions": transactions, "payments": payments}
    return features_from_inputs(observations, inputs, threads=threads)


def features_from_inputs(
    observations: pl.DataFrame, inputs: dict[str, Frame], *, threads: int | None = None
) -> pl.DataFrame:
    """``features_from_frames`` that takes the input frames in a dict and empties it once
    DuckDB holds its own copy, so a caller that kept no other reference frees them early."""
    obs_input = observations.select("customer_id", "observation_date").with_row_index("obs_id")
    config: dict[str, str | bool | int | float | list[str]] = {
        "threads": threads or os.cpu_count() or 1
    }
    with duckdb.connect(config=config) as con:
        con.execute("SET enable_progress_bar = false")  # DuckDB draws one on a terminal
        con.register("obs_input", obs_input)
        for name, registered in INPUT_VIEWS.items():
            con.register(registered, inputs.pop(name))
        for statement in NORMALISE_INPUTS:
            con.execute(statement)
        for registered in INPUT_VIEWS.values():
            con.unregister(registered)
        pa.default_memory_pool().release_unused()
        for statement in base.BUILD_STEPS:
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
