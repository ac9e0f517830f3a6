"""Shared point-in-time building blocks, as DuckDB SQL over the normalised inputs.

Inputs (normalised by ``compute.py``): ``obs(obs_id, k, customer_id, t, t_date)``, ``cust``,
``txn`` (with per-transaction flags) and ``pay``, all keyed by the integer customer key ``k``.
Only events strictly before ``t`` (midnight UTC of the observation date) enter any of these
tables, so nothing downstream can see the future.
"""

from __future__ import annotations

# Observations with their customer's profile (LEFT: unknown customers give NaN features).
OBS_PROFILE = """
CREATE TEMP TABLE obs_profile AS
SELECT o.obs_id, o.k, o.t, o.t_date, c.created_at, c.monthly_income,
       c.salary_day, c.credit_limit
FROM obs o LEFT JOIN cust c USING (k)
"""

# Transactions of [t-120d, t) summed per observation and disjoint time bucket: 0 = the last 7
# days, 1 = days 8-14, 2 = days 15-30, 3/4/5 = days 31-60/61-90/91-120 (the baseline's three
# 30-day periods). One GROUP BY over the range join with plain sums; it measured 2.5x faster
# than one filtered aggregate per window. A merchant is new in a window when its previous
# visit precedes the window's start (the last 30 days for buckets 0-2, else the bucket's own);
# an active day is counted by its first transaction, from the later of t-30d and the day the
# customer was created.
TXN_BUCKETS = """
CREATE TEMP TABLE txn_buckets AS
WITH w AS (
    SELECT o.obs_id, x.amount, x.debit, x.flow, x.discretionary, x.essential, x.atm,
           x.weekend, x.merchant_debit, x.prev_visit, x.first_of_day, x.txn_time,
           o.t - INTERVAL 30 DAY AS t30, CAST(CAST(o.created_at AS DATE) AS TIMESTAMP) AS created,
           CASE WHEN x.txn_time >= o.t - INTERVAL 7 DAY THEN 0
                WHEN x.txn_time >= o.t - INTERVAL 14 DAY THEN 1
                WHEN x.txn_time >= o.t - INTERVAL 30 DAY THEN 2
                WHEN x.txn_time >= o.t - INTERVAL 60 DAY THEN 3
                WHEN x.txn_time >= o.t - INTERVAL 90 DAY THEN 4
                ELSE 5 END AS bucket,
           CASE WHEN x.txn_time >= o.t - INTERVAL 30 DAY THEN o.t - INTERVAL 30 DAY
                WHEN x.txn_time >= o.t - INTERVAL 60 DAY THEN o.t - INTERVAL 60 DAY
                WHEN x.txn_time >= o.t - INTERVAL 90 DAY THEN o.t - INTERVAL 90 DAY
                ELSE o.t - INTERVAL 120 DAY END AS window_start
    FROM obs_profile o
    JOIN txn x ON x.k = o.k AND x.txn_time < o.t AND x.txn_time >= o.t - INTERVAL 120 DAY
)
SELECT obs_id, bucket,
    sum(flow) AS flow,
    sum(CASE WHEN NOT debit THEN amount END) AS credit,
    sum(CASE WHEN debit THEN amount END) AS debit,
    count(*) FILTER (debit) AS debit_count,
    sum(CASE WHEN debit AND discretionary THEN amount END) AS disc,
    sum(CASE WHEN debit AND essential THEN amount END) AS ess,
    sum(CASE WHEN debit AND weekend THEN amount END) AS weekend,
    count(*) FILTER (atm) AS atm_count,
    sum(CASE WHEN atm THEN amount END) AS atm_amount,
    count(*) AS txn_count,
    count(*) FILTER (merchant_debit AND coalesce(prev_visit < window_start, true)) AS merchants,
    count(*) FILTER (first_of_day AND txn_time >= greatest(t30, created)) AS active_days
FROM w GROUP BY obs_id, bucket
"""

# Per observation, the window sums the families use: last 7/14/30/90 days, and the baseline
# [t-120d, t-30d) ("base") with its three 30-day periods b1-b3.
TXN_WINDOWS = """
CREATE TEMP TABLE txn_windows AS
SELECT obs_id,
    sum(flow) FILTER (bucket = 0) AS net_7, sum(flow) FILTER (bucket <= 1) AS net_14,
    sum(flow) FILTER (bucket <= 2) AS net_30, sum(flow) FILTER (bucket >= 3) AS net_base,
    sum(credit) FILTER (bucket <= 4) AS credit_90, sum(debit) FILTER (bucket <= 4) AS debit_90,
    sum(debit) FILTER (bucket = 0) AS debit_7, sum(debit) FILTER (bucket <= 2) AS debit_30,
    sum(debit) FILTER (bucket >= 3) AS debit_base,
    sum(debit_count) FILTER (bucket <= 2) AS debit_count_30,
    sum(debit_count) FILTER (bucket >= 3) AS debit_count_base,
    sum(disc) FILTER (bucket = 0) AS disc_7, sum(disc) FILTER (bucket <= 2) AS disc_30,
    sum(disc) FILTER (bucket >= 3) AS disc_base,
    sum(ess) FILTER (bucket = 0) AS ess_7, sum(ess) FILTER (bucket <= 2) AS ess_30,
    sum(ess) FILTER (bucket >= 3) AS ess_base,
    sum(weekend) FILTER (bucket <= 2) AS weekend_30,
    sum(weekend) FILTER (bucket >= 3) AS weekend_base,
    sum(merchants) FILTER (bucket <= 2) AS merchants_30,
    sum(merchants) FILTER (bucket = 3) AS merchants_b1,
    sum(merchants) FILTER (bucket = 4) AS merchants_b2,
    sum(merchants) FILTER (bucket = 5) AS merchants_b3,
    sum(atm_count) FILTER (bucket <= 2) AS atm_count_30,
    sum(atm_count) FILTER (bucket >= 3) AS atm_count_base,
    sum(atm_amount) FILTER (bucket <= 2) AS atm_amount_30,
    sum(atm_amount) FILTER (bucket >= 3) AS atm_amount_base,
    sum(txn_count) FILTER (bucket <= 2) AS txn_count_30,
    sum(txn_count) FILTER (bucket >= 3) AS txn_count_base,
    sum(active_days) FILTER (bucket <= 2) AS active_days_30
FROM txn_buckets GROUP BY obs_id
"""

# The last transaction before t over the whole history (NULL: no transaction before t).
TXN_LAST = """
CREATE TEMP TABLE txn_last AS
SELECT o.obs_id, x.txn_time AS last_txn_time
FROM obs o ASOF LEFT JOIN txn x ON o.k = x.k AND o.t > x.txn_time
"""

# Every statement due before t, with its status at t (see docs/features.md).
STATEMENTS_AT_T = """
CREATE TEMP TABLE statements_at_t AS
WITH s AS (
    SELECT o.obs_id, o.t_date, p.due_date, p.amount_due, p.amount_paid, p.paid_date,
           p.paid_date IS NOT NULL AND p.paid_date < o.t_date AS paid,
           p.amount_due / nullif(o.credit_limit, 0) AS utilisation
    FROM obs_profile o JOIN pay p ON p.k = o.k AND p.due_date < o.t_date
)
SELECT *,
    CASE WHEN paid THEN greatest(0, date_diff('day', due_date, paid_date))
         ELSE date_diff('day', due_date, t_date) END AS days_late,
    paid AND coalesce(amount_paid, 0) < amount_due AS partial,
    CASE WHEN amount_due > 0
         THEN (amount_due - CASE WHEN paid THEN coalesce(amount_paid, 0) ELSE 0 END) / amount_due
    END AS shortfall,
    due_date = max(due_date) OVER (PARTITION BY obs_id) AS latest,
    due_date >= t_date - INTERVAL 60 DAY AS d60,
    due_date >= t_date - INTERVAL 90 DAY AS d90,
    due_date >= t_date - INTERVAL 180 DAY AS d180
FROM s
"""

# Salary credits before t, all history (for last and first) with a 180-day flag.
SALARY_CREDITS = """
CREATE TEMP TABLE salary_credits AS
SELECT o.obs_id, o.t, x.txn_time, x.amount, x.txn_time >= o.t - INTERVAL 180 DAY AS d180
FROM obs o
JOIN txn x ON x.k = o.k AND x.txn_time < o.t
WHERE x.salary
"""

# Windowed aggregates per observation, zero-filled for customers with a transaction before t
# (true zeros) and NULL for customers without one (missing, NaN).
TXN_BASE = """
CREATE TEMP TABLE txn_base AS
SELECT o.obs_id, o.t, o.t_date, o.created_at, l.last_txn_time,
       CASE WHEN l.last_txn_time IS NOT NULL
            THEN coalesce(COLUMNS(w.* EXCLUDE (obs_id)), 0) END
FROM obs_profile o
JOIN txn_last l USING (obs_id)
LEFT JOIN txn_windows w USING (obs_id)
"""

BUILD_STEPS = (
    OBS_PROFILE,
    TXN_BUCKETS,
    TXN_WINDOWS,
    TXN_LAST,
    TXN_BASE,
    STATEMENTS_AT_T,
    SALARY_CREDITS,
)
