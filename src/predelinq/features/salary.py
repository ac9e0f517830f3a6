"""Salary features: late, smaller or missing salary credits."""

from predelinq.features.registry import feature

FEATURES = (
    feature(
        "sal_last_delay_days",
        "salary",
        "all",
        "days the last salary came after salary_day (-15..14)",
    ),
    feature("sal_days_since_last", "salary", "all", "days from the last salary credit to t"),
    feature(
        "sal_amount_deviation",
        "salary",
        "180d",
        "last salary / (monthly income, else own earlier salaries) - 1",
    ),
    feature(
        "sal_missing_months_180",
        "salary",
        "180d",
        "30-day periods of the last 180 days without a salary credit",
    ),
)

# Salary credits in each of the six 30-day periods before t, nearest first.
_PERIOD_COUNTS = ",\n    ".join(
    f"count(*) FILTER (txn_time >= t - INTERVAL {30 * k} DAY "
    f"AND txn_time < t - INTERVAL {30 * (k - 1)} DAY) AS period_{k}"
    for k in range(1, 7)
)
_MISSING_PERIODS = " + ".join(
    f"CAST(s.t - INTERVAL {30 * k} DAY >= s.first_time AND s.period_{k} = 0 AS INTEGER)"
    for k in range(1, 7)
)

SQL = f"""
WITH s AS (
    SELECT obs_id, any_value(t) AS t, max(txn_time) AS last_time, min(txn_time) AS first_time,
        arg_max(amount, txn_time) AS last_amount,
        sum(amount) FILTER (d180) AS sum_180, count(*) FILTER (d180) AS n_180,
        {_PERIOD_COUNTS}
    FROM salary_credits
    GROUP BY obs_id
)
SELECT s.obs_id,
    (((day(s.last_time) - p.salary_day + 15) % 30 + 30) % 30) - 15 AS sal_last_delay_days,
    date_diff('microsecond', s.last_time, s.t) / 86400e6 AS sal_days_since_last,
    s.last_amount / nullif(
        coalesce(p.monthly_income, (s.sum_180 - s.last_amount) / nullif(s.n_180 - 1, 0)), 0
    ) - 1 AS sal_amount_deviation,
    {_MISSING_PERIODS} AS sal_missing_months_180
FROM s JOIN obs_profile p USING (obs_id)
"""
