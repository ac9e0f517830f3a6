"""User-declared features end to end, as a user runs them: declared in predelinq.toml, trained
on, served, and refused for scoring once their declaration no longer matches the model."""

from __future__ import annotations

import json

import polars as pl
import pytest

from support.cli import run_cli

USER_FEATURES = """
[categories]
"groceries" = "food"

[[features]]
name = "food_share_90"
source = "transactions"
where = { category = "food", txn_type = "debit" }
value = "amount"
agg = "sum"
window = 90
ratio = { where = { txn_type = "debit" }, value = "amount", agg = "sum", window = 90 }

[[features]]
name = "days_deep_overdraft_90"
source = "transactions"
where = { balance = { lt = -500 } }
agg = "days"
window = 90
"""


@pytest.fixture
def declared(loaded, tmp_path, monkeypatch):
    """The standard lender with USER_FEATURES declared in the configuration file. (It stays
    in this module, next to the declaration it writes.)"""
    config = tmp_path / "predelinq.toml"
    config.write_text(USER_FEATURES)
    monkeypatch.setenv("PREDELINQ_CONFIG", str(config))
    return loaded.database, config


def test_user_features_are_trained_served_and_guarded(declared, tmp_path):
    database, config = declared
    listed = json.loads(run_cli("features", "list", "--json").stdout)
    assert [row["name"] for row in listed[-2:]] == ["food_share_90", "days_deep_overdraft_90"]
    assert listed[-1]["origin"].endswith("[[features]] #2 ('days_deep_overdraft_90')")

    trained = run_cli("retrain", "--max-customers", "all", "--json", database_url=database.url)
    assert trained.returncode == 0, trained.stderr
    version = json.loads(trained.stdout)["model_version"]
    shown = json.loads(run_cli("models", "--json", database_url=database.url).stdout)
    details = next(m for m in shown if m["model_version"] == version)["details"]
    assert details["feature_names"][-2:] == ["food_share_90", "days_deep_overdraft_90"]
    assert set(details["feature_fingerprints"]) == set(details["feature_names"])

    # the mapped category reaches the feature: food is groceries, a real share of debits
    export = tmp_path / "features.csv"
    exported = run_cli(
        "features", "export", "--as-of", "2024-10-01", "--output", str(export),
        database_url=database.url,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    share = pl.read_csv(export)["food_share_90"].drop_nans().drop_nulls()
    mean = share.mean()
    assert share.len() > 100 and isinstance(mean, float) and 0 < mean < 1

    scores = tmp_path / "scores.csv"
    args = ("score", "--as-of", "2024-10-01", "--output", str(scores))
    assert run_cli(*args, database_url=database.url).returncode == 0

    config.write_text(USER_FEATURES.replace("window = 90\n", "window = 60\n", 1))
    refused = run_cli(*args, database_url=database.url)
    assert refused.returncode == 4
    assert "food_share_90" in refused.stderr and "declared differently" in refused.stderr
    assert "Traceback" not in refused.stderr

    config.write_text(USER_FEATURES.split("[[features]]")[0])  # both removed
    refused = run_cli(*args, database_url=database.url)
    assert refused.returncode == 4 and "no longer declared" in refused.stderr
    assert "days_deep_overdraft_90" in refused.stderr


def test_a_bad_declaration_stops_retrain_with_one_line(declared):
    database, config = declared
    config.write_text(USER_FEATURES.replace('agg = "days"', 'agg = "median"'))
    result = run_cli("retrain", "--max-customers", "all", database_url=database.url)
    assert result.returncode == 2
    assert "days_deep_overdraft_90" in result.stderr and "median" in result.stderr
    assert "Traceback" not in result.stderr
