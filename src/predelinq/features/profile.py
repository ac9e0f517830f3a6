"""Profile features: account age, income and credit limit as known at t."""

from predelinq.features.registry import feature

FEATURES = (
    feature("prof_account_age_days", "profile", "at t", "days from created_at to t"),
    feature("prof_monthly_income", "profile", "at t", "monthly income"),
    feature("prof_credit_limit", "profile", "at t", "credit limit"),
)

SQL = """
SELECT obs_id,
    date_diff('microsecond', created_at, t) / 86400e6 AS prof_account_age_days,
    monthly_income AS prof_monthly_income,
    credit_limit AS prof_credit_limit
FROM obs_profile
"""
