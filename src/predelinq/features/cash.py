"""Cash features: ATM withdrawals, their size, and reliance on cash."""

from predelinq.features.registry import feature

FEATURES = (
    feature("cash_atm_count_30", "cash", "30d", "ATM withdrawals"),
    feature(
        "cash_atm_count_change",
        "cash",
        "30d vs baseline",
        "30-day ATM withdrawals minus baseline / 3",
    ),
    feature(
        "cash_atm_amount_change", "cash", "30d vs baseline", "mean ATM withdrawal / baseline mean"
    ),
    feature("cash_reliance_30", "cash", "30d", "ATM withdrawal amount / all debits"),
)

SQL = """
SELECT obs_id,
    atm_count_30 AS cash_atm_count_30,
    atm_count_30 - atm_count_base / 3.0 AS cash_atm_count_change,
    (atm_amount_30 / nullif(atm_count_30, 0))
        / nullif(atm_amount_base / nullif(atm_count_base, 0), 0) AS cash_atm_amount_change,
    atm_amount_30 / nullif(debit_30, 0) AS cash_reliance_30
FROM txn_base
"""
