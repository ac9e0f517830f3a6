"""Balance features: net flow (credits - debits) and savings drawdown."""

from predelinq.features.registry import feature

FEATURES = (
    feature("bal_net_flow_7", "balance", "7d", "credits minus debits"),
    feature("bal_net_flow_14", "balance", "14d", "credits minus debits"),
    feature("bal_net_flow_30", "balance", "30d", "credits minus debits"),
    feature(
        "bal_net_flow_30_vs_baseline",
        "balance",
        "30d vs baseline",
        "30-day net flow minus baseline net flow / 3",
    ),
    feature("bal_drawdown_90", "balance", "90d", "(debits - credits) / credits"),
)

SQL = """
SELECT obs_id,
    net_7 AS bal_net_flow_7,
    net_14 AS bal_net_flow_14,
    net_30 AS bal_net_flow_30,
    net_30 - net_base / 3.0 AS bal_net_flow_30_vs_baseline,
    (debit_90 - credit_90) / nullif(credit_90, 0) AS bal_drawdown_90
FROM txn_base
"""
