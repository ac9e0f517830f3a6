"""Shared point-in-time building blocks, as DuckDB SQL over the registered input frames.

Inputs (registered by ``compute.py``): ``obs(obs_id, customer_id, t, t_date)``, ``cust``,
``txn``, ``pay``. Only events strictly before ``t`` (midnight UTC of the observation date)
enter any of these tables, so nothing downstream can see the future.
"""

from __future__ import annotations

# Observations with their customer's profile (LEFT: unknown customers give NaN features).
OBS_PROFILE = """
CREATE TEMP TABLE obs_profile AS
SELECT o.obs_id, o.customer_id, o.t, o.t_date, c.created_at, c.monthly_income,
       c.salary_day, c.credit_limit
FROM obs o LEFT JOIN cust c USING (customer_id)
"""

# Windowed transaction aggregates over [t-120d, t): one GROUP BY over a range join.
# Flags: w7/w14/w30/w90 = inside the last N days; base = the baseline [t-120d, t-30d);
# b1..b3 = the baseline's three 30-day periods, nearest first.
TXN_WINDOWS = """
CREATE TEMP TABLE txn_windows AS
WITH w AS (
    SELECT o.obs_id, o.t, x.amount, x.txn_type = 'debit' AS debit,
           CASE WHEN x.txn_type = 'debit' THEN -x.amount ELSE x.amount END AS flow,
           x.category IN ('dining', 'entertainment', 'shopping') AS discretionary,
           x.category IN ('groceries', 'utilities', 'rent') AS essential,
           x.txn_type = 'debit' AND (x.channel = 'atm' OR x.category = 'cash') AS atm,
           dayofweek(x.txn_time) IN (0, 6) AS weekend,
           x.txn_type = 'debit' AND x.merchant_id IS NOT NULL AS merchant_debit,
           x.prev_visit,
           x.prev_day IS NULL OR x.prev_day < CAST(x.txn_time AS DATE) AS first_of_day,
           x.txn_time >= greatest(
               o.t - INTERVAL 30 DAY, CAST(CAST(o.created_at AS DATE) AS TIMESTAMP)
           ) AS w30_since_created,
           x.txn_time >= o.t - INTERVAL 7 DAY AS w7,
           x.txn_time >= o.t - INTERVAL 14 DAY AS w14,
           x.txn_time >= o.t - INTERVAL 30 DAY AS w30,
           x.txn_time >= o.t - INTERVAL 90 DAY AS w90,
           x.txn_time < o.t - INTERVAL 30 DAY AS base,
           x.txn_time < o.t - INTERVAL 30 DAY AND x.txn_time >= o.t - INTERVAL 60 DAY AS b1,
           x.txn_time < o.t - INTERVAL 60 DAY AND x.txn_time >= o.t - INTERVAL 90 DAY AS b2,
           x.txn_time < o.t - INTERVAL 90 DAY AS b3
    FROM obs_profile o
    JOIN txn x ON x.customer_id = o.customer_id
              AND x.txn_time < o.t AND x.txn_time >= o.t - INTERVAL 120 DAY
)
SELECT obs_id,
    sum(flow) FILTER (w7) AS net_7, sum(flow) FILTER (w14) AS net_14,
    sum(flow) FILTER (w30) AS net_30, sum(flow) FILTER (base) AS net_base,
    sum(amount) FILTER (w90 AND NOT debit) AS credit_90,
    sum(amount) FILTER (w90 AND debit) AS debit_90,
    sum(amount) FILTER (w7 AND debit) AS debit_7, sum(amount) FILTER (w30 AND debit) AS debit_30,
    sum(amount) FILTER (base AND debit) AS debit_base,
    count(*) FILTER (w30 AND debit) AS debit_count_30,
    count(*) FILTER (base AND debit) AS debit_count_base,
    sum(amount) FILTER (w7 AND debit AND discretionary) AS disc_7,
    sum(amount) FILTER (w30 AND debit AND discretionary) AS disc_30,
    sum(amount) FILTER (base AND debit AND discretionary) AS disc_base,
    sum(amount) FILTER (w7 AND debit AND essential) AS ess_7,
    sum(amount) FILTER (w30 AND debit AND essential) AS ess_30,
    sum(amount) FILTER (base AND debit AND essential) AS ess_base,
    sum(amount) FILTER (w30 AND debit AND weekend) AS weekend_30,
    sum(amount) FILTER (base AND debit AND weekend) AS weekend_base,
    -- distinct merchants: visits whose previous visit to that merchant precedes the window
    count(*) FILTER (w30 AND merchant_debit AND coalesce(prev_visit < t - INTERVAL 30 DAY, true))
        AS merchants_30,
    count(*) FILTER (b1 AND merchant_debit AND coalesce(prev_visit < t - INTERVAL 60 DAY, true))
        AS merchants_b1,
    count(*) FILTER (b2 AND merchant_debit AND coalesce(prev_visit < t - INTERVAL 90 DAY, true))
        AS merchants_b2,
    count(*) FILTER (b3 AND merchant_debit AND coalesce(prev_visit < t - INTERVAL 120 DAY, true))
        AS merchants_b3,
    count(*) FILTER (w30 AND atm) AS atm_count_30, count(*) FILTER (base AND atm) AS atm_count_base,
    sum(amount) FILTER (w30 AND atm) AS atm_amount_30,
    sum(amount) FILTER (base AND atm) AS atm_amount_base,
    count(*) FILTER (w30) AS txn_count_30, count(*) FILTER (base) AS txn_count_base,
    -- distinct days: the first transaction of each day (windows start at midnight)
    count(*) FILTER (w30_since_created AND first_of_day) AS active_days_30
FROM w GROUP BY obs_id
"""

# The last transaction before t over the whole history (NULL: no transaction before t).
TXN_LAST = """
CREATE TEMP TABLE txn_last AS
SELECT o.obs_id, x.txn_time AS last_txn_time
FROM obs o ASOF LEFT JOIN txn x ON o.customer_id = x.customer_id AND o.t > x.txn_time
"""

# Every statement due before t, with its status at t (see docs/features.md).
STATEMENTS_AT_T = """
CREATE TEMP TABLE statements_at_t AS
WITH s AS (
    SELECT o.obs_id, o.t_date, p.due_date, p.amount_due, p.amount_paid, p.paid_date,
           p.paid_date IS NOT NULL AND p.paid_date < o.t_date AS paid,
           p.amount_due / nullif(o.credit_limit, 0) AS utilisation
    FROM obs_profile o JOIN pay p ON p.customer_id = o.customer_id AND p.due_date < o.t_date
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
JOIN txn x ON x.customer_id = o.customer_id AND x.txn_time < o.t
WHERE x.txn_type = 'credit' AND x.category = 'salary'
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

BUILD_STEPS = (OBS_PROFILE, TXN_WINDOWS, TXN_LAST, TXN_BASE, STATEMENTS_AT_T, SALARY_CREDITS)
