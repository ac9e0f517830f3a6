"""``predelinq backtest`` as a user runs it: the installed console script, real databases."""

from __future__ import annotations

import json

import pytest

from support.cli import run_cli

RANGE = ("--from", "2024-07-01", "--to", "2024-10-01")


def test_backtest_json_has_a_row_per_period_and_policy_and_a_summary(loaded):
    result = run_cli(
        "backtest",
        *RANGE,
        "--policy",
        "never",
        "--policy",
        "always",
        "--after",
        "2024-08-01",
        "--json",
        database_url=loaded.database.url,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(row["period"], row["policy"]) for row in report["rows"]] == [
        ("2024-07-01", "never"),
        ("2024-08-01", "never"),
        ("2024-09-01", "never"),
        ("2024-07-01", "always"),
        ("2024-08-01", "always"),
        ("2024-09-01", "always"),
    ]
    for row in report["rows"]:
        assert {
            "period",
            "policy",
            "model_version",
            "retrained",
            "rows",
            "positives",
            "auc",
        } <= set(row)
        assert row["rows"] > 0 and 0.5 < row["auc"] <= 1
    summary = {line["policy"]: line for line in report["summary"]}
    assert set(summary) == {"never", "always"}
    assert summary["never"]["retrains"] == 1 and summary["always"]["retrains"] == 3
    assert {"mean_auc", "mean_auc_after", "retrains", "compute_seconds"} <= set(summary["never"])


def test_backtest_prints_the_rows_and_the_summary(loaded):
    result = run_cli(
        "backtest", *RANGE, "--every", "2mo", "--policy", "seed", database_url=loaded.database.url
    )
    assert result.returncode == 0, result.stderr
    assert "summary" in result.stdout and "mean auc" in result.stdout
    assert "2024-07-01" in result.stdout and "2024-09-01" in result.stdout
    assert "2024-08-01" not in result.stdout  # every two months
    assert "backtest-2024-07-01" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2024-09-01", "--to", "2024-07-01"), "must be before --to"),
        ((*RANGE, "--every", "0mo"), "--every must be a positive number"),
        ((*RANGE, "--every", "monthly"), "--every must be a positive number"),
        ((*RANGE, "--policy", "sometimes"), "'sometimes' is not one of"),
        (("--from", "2024-13-01", "--to", "2025-01-01"), "Invalid value for '--from'"),
        ((*RANGE, "--max-customers", "some"), "max_customers must be a positive number"),
    ],
)
def test_backtest_refuses_a_bad_range_step_or_policy_with_exit_2(tmp_path, args, message):
    """Refused before the database is opened: the URL names a directory that does not exist."""
    url = f"sqlite:///{tmp_path / 'absent' / 'predelinq.db'}"
    result = run_cli("backtest", *args, database_url=url)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_backtest_refuses_a_range_without_labels_with_exit_2(loaded):
    result = run_cli(
        "backtest", "--from", "2030-01-01", "--to", "2030-06-01", database_url=loaded.database.url
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "backtest: no labels observed between --from 2030-01-01 and --to 2030-06-01" in (
        " ".join(result.stderr.split())
    )
    assert "Traceback" not in result.stderr
