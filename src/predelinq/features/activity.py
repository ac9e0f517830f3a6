"""Activity features: how much, and how recently, the account is used."""

from predelinq.features.registry import feature

FEATURES = (
    feature("act_txn_count_30", "activity", "30d", "transactions"),
    feature(
        "act_txn_count_change", "activity", "30d vs baseline", "30-day transactions / baseline / 3"
    ),
    feature(
        "act_inactive_days_30",
        "activity",
        "30d",
        "days without a transaction (since the account opened)",
    ),
    feature("act_days_since_last_txn", "activity", "all", "days from the last transaction to t"),
)

SQL = """
SELECT obs_id,
    txn_count_30 AS act_txn_count_30,
    txn_count_30 / nullif(txn_count_base / 3.0, 0) AS act_txn_count_change,
    CASE WHEN last_txn_time IS NOT NULL THEN greatest(0,
        date_diff('day', greatest(t_date - 30, CAST(created_at AS DATE)), t_date) - active_days_30
    ) END AS act_inactive_days_30,
    date_diff('microsecond', last_txn_time, t) / 86400e6 AS act_days_since_last_txn
FROM txn_base
"""
