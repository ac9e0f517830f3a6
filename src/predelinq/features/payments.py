"""Payment features: lateness, unpaid and partial statements, shortfall, utilisation."""

from predelinq.features.registry import feature

FEATURES = (
    feature(
        "pay_days_late_mean_90",
        "payments",
        "90d",
        "mean days late of statements due in the last 90 days",
    ),
    feature(
        "pay_days_late_max_90",
        "payments",
        "90d",
        "max days late of statements due in the last 90 days",
    ),
    feature(
        "pay_days_late_mean_180",
        "payments",
        "180d",
        "mean days late of statements due in the last 180 days",
    ),
    feature(
        "pay_days_late_max_180",
        "payments",
        "180d",
        "max days late of statements due in the last 180 days",
    ),
    feature("pay_late_count_180", "payments", "180d", "late statements due in the last 180 days"),
    feature(
        "pay_unpaid_past_due_count", "payments", "all", "statements due before t and unpaid at t"
    ),
    feature(
        "pay_partial_share_180",
        "payments",
        "180d",
        "share of partially paid statements due in the last 180 days",
    ),
    feature(
        "pay_shortfall_mean_180",
        "payments",
        "180d",
        "mean unpaid share of statements due in the last 180 days",
    ),
    feature(
        "pay_lateness_shift",
        "payments",
        "60d vs 61-180d",
        "mean days late, last 60 days minus days 61-180",
    ),
    feature(
        "pay_utilisation_latest",
        "payments",
        "latest",
        "amount due / credit limit of the latest statement",
    ),
    feature(
        "pay_utilisation_change",
        "payments",
        "latest vs 61-180d",
        "latest utilisation minus mean utilisation of days 61-180",
    ),
)

SQL = """
SELECT obs_id,
    avg(days_late) FILTER (d90) AS pay_days_late_mean_90,
    max(days_late) FILTER (d90) AS pay_days_late_max_90,
    avg(days_late) FILTER (d180) AS pay_days_late_mean_180,
    max(days_late) FILTER (d180) AS pay_days_late_max_180,
    count(*) FILTER (d180 AND days_late > 0) AS pay_late_count_180,
    count(*) FILTER (NOT paid) AS pay_unpaid_past_due_count,
    avg(CAST(partial AS DOUBLE)) FILTER (d180) AS pay_partial_share_180,
    avg(shortfall) FILTER (d180) AS pay_shortfall_mean_180,
    avg(days_late) FILTER (d60) - avg(days_late) FILTER (d180 AND NOT d60) AS pay_lateness_shift,
    avg(utilisation) FILTER (latest) AS pay_utilisation_latest,
    avg(utilisation) FILTER (latest) - avg(utilisation) FILTER (d180 AND NOT d60)
        AS pay_utilisation_change
FROM statements_at_t
GROUP BY obs_id
"""
