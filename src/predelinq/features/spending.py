"""Spending features: total, discretionary and essential spend against the customer's normal."""

from predelinq.features.registry import feature

FEATURES = (
    feature("spend_total_7", "spending", "7d", "sum of debits"),
    feature("spend_total_30", "spending", "30d", "sum of debits"),
    feature(
        "spend_total_7_vs_baseline",
        "spending",
        "7d vs baseline",
        "7-day debits / baseline debits x 7/90",
    ),
    feature(
        "spend_total_30_vs_baseline",
        "spending",
        "30d vs baseline",
        "30-day debits / baseline debits / 3",
    ),
    feature("spend_discretionary_7", "spending", "7d", "dining, entertainment and shopping debits"),
    feature(
        "spend_discretionary_30", "spending", "30d", "dining, entertainment and shopping debits"
    ),
    feature(
        "spend_discretionary_30_vs_baseline",
        "spending",
        "30d vs baseline",
        "30-day discretionary / baseline / 3",
    ),
    feature("spend_essential_7", "spending", "7d", "groceries, utilities and rent debits"),
    feature("spend_essential_30", "spending", "30d", "groceries, utilities and rent debits"),
    feature(
        "spend_essential_30_vs_baseline",
        "spending",
        "30d vs baseline",
        "30-day essential / baseline / 3",
    ),
    feature(
        "spend_merchant_diversity_change",
        "spending",
        "30d vs baseline",
        "distinct merchants / baseline mean per 30 days",
    ),
    feature(
        "spend_avg_ticket_change",
        "spending",
        "30d vs baseline",
        "mean debit amount / baseline mean debit amount",
    ),
    feature(
        "spend_weekend_share_change",
        "spending",
        "30d vs baseline",
        "weekend share of debit amount minus baseline share",
    ),
)

SQL = """
SELECT obs_id,
    debit_7 AS spend_total_7,
    debit_30 AS spend_total_30,
    debit_7 / nullif(debit_base * 7 / 90.0, 0) AS spend_total_7_vs_baseline,
    debit_30 / nullif(debit_base / 3.0, 0) AS spend_total_30_vs_baseline,
    disc_7 AS spend_discretionary_7,
    disc_30 AS spend_discretionary_30,
    disc_30 / nullif(disc_base / 3.0, 0) AS spend_discretionary_30_vs_baseline,
    ess_7 AS spend_essential_7,
    ess_30 AS spend_essential_30,
    ess_30 / nullif(ess_base / 3.0, 0) AS spend_essential_30_vs_baseline,
    merchants_30 / nullif((merchants_b1 + merchants_b2 + merchants_b3) / 3.0, 0)
        AS spend_merchant_diversity_change,
    (debit_30 / nullif(debit_count_30, 0)) / nullif(debit_base / nullif(debit_count_base, 0), 0)
        AS spend_avg_ticket_change,
    weekend_30 / nullif(debit_30, 0) - weekend_base / nullif(debit_base, 0)
        AS spend_weekend_share_change
FROM txn_base
"""
