"""The retraining commands as a user runs them: the installed console script, real databases."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import polars as pl
import xgboost as xgb
from sqlalchemy import func, select

from predelinq.db import schema
from predelinq.ingest import ingest_files
from support.cli import run_cli

SEED_STATUS_KEYS = {"new_customers_count", "retraining_needed", "reason", "threshold"}
SEED_RESULT_KEYS = {"status", "customers_trained", "samples_trained", "auc", "model_version"}


def test_check_json_has_the_seed_fields_then_stays_quiet(loaded):
    database, data = loaded.database, loaded.data
    first = run_cli("check", "--json", database_url=database.url)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert set(report) >= SEED_STATUS_KEYS and report["retraining_needed"] is True
    assert report["new_customers_count"] == data.labels["customer_id"].n_unique()
    assert SEED_RESULT_KEYS | {"promoted"} <= set(report["result"])
    assert report["result"]["status"] == "success" and report["result"]["promoted"] is True

    status = json.loads(run_cli("status", "--json", database_url=database.url).stdout)
    assert status["recent_retraining"][0]["model_version"] == report["result"]["model_version"]
    assert {
        "retrain_id",
        "retrain_date",
        "customers_trained",
        "samples_trained",
        "auc_score",
    } <= set(status["recent_retraining"][0])


def test_score_writes_the_champions_risk(loaded, tmp_path):
    database = loaded.database
    assert run_cli("retrain", "--max-customers", "all", database_url=database.url).returncode == 0
    output = tmp_path / "scores.csv"
    result = run_cli(
        "score", "--as-of", "2024-10-01", "--output", str(output), database_url=database.url
    )
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(output)
    assert scores.columns == [
        "customer_id",
        "risk_score",
        "model_version",
        "last_event_at",
        "data_age_days",
    ]
    assert scores["risk_score"].is_between(0, 1).all()
    assert scores["model_version"].n_unique() == 1


def test_plain_xgboost_on_the_exported_model_gives_the_scores(loaded, tmp_path):
    """Portable artifacts: quick_model.json holds only the trees in use, its features and
    threshold as attributes, so plain xgboost reproduces `predelinq score` exactly."""
    database = loaded.database
    retrained = run_cli(
        "retrain", "--max-customers", "all", "--seed", "0", "--json", database_url=database.url
    )
    assert retrained.returncode == 0 and json.loads(retrained.stdout)["promoted"] is True
    scores_path, features_path = tmp_path / "scores.csv", tmp_path / "features.parquet"
    for command, path in (("score", scores_path), ("features", features_path)):
        args = ("features", "export") if command == "features" else ("score",)
        done = run_cli(
            *args, "--as-of", "2024-10-01", "--output", str(path), database_url=database.url
        )
        assert done.returncode == 0, done.stderr

    booster = xgb.Booster()
    booster.load_model(tmp_path / "models" / "quick" / "quick_model.json")
    stored_names, threshold = booster.attr("feature_names"), booster.attr("threshold")
    assert stored_names is not None and threshold is not None
    names = json.loads(stored_names)
    assert booster.attr("best_iteration") is None and booster.feature_names == names
    assert 0 < float(threshold) < 1
    joined = pl.read_parquet(features_path).join(
        pl.read_csv(scores_path), on="customer_id", how="full", coalesce=True
    )
    assert joined.height == pl.read_csv(scores_path).height > 100
    matrix = xgb.DMatrix(joined.select(names).to_numpy(), feature_names=names, missing=np.nan)
    plain = booster.predict(matrix).astype(float)
    assert np.array_equal(plain, joined["risk_score"].to_numpy())


def test_shuffled_labels_check_rejects_the_first_model_and_exits_0(
    database, synthetic, tmp_path, monkeypatch
):
    data = synthetic.data
    shuffled = data.labels.with_columns(
        pl.Series("label", np.random.default_rng(3).permutation(data.labels["label"].to_numpy()))
    )
    files = {**synthetic.files, "labels": tmp_path / "labels.parquet"}
    shuffled.write_parquet(files["labels"])
    ingest_files(database.engine, files)
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(tmp_path / "models"))

    result = run_cli("retrain", "--seed", "0", database_url=database.url)

    assert result.returncode == 0, result.stderr
    assert "no better than chance" in result.stdout and "Traceback" not in result.stderr
    with database.engine.connect() as connection:
        log = connection.execute(select(schema.model_retraining_log)).one()
        champion = connection.execute(select(func.count()).select_from(schema.model_champion))
        assert champion.scalar_one() == 0
    assert (log.status, log.promoted) == ("rejected", False)
    assert not (tmp_path / "models" / "quick" / "quick_model.json").exists()


def test_score_leaves_out_unknown_ids_and_refuses_when_none_is_known(loaded, tmp_path):
    database, data = loaded.database, loaded.data
    assert run_cli("retrain", "--max-customers", "all", database_url=database.url).returncode == 0
    known = data.customers["customer_id"][0]
    asked = tmp_path / "ids.csv"
    asked.write_text(f"customer_id\n{known}\nNOPE-1\n[/bold]\n")
    output = tmp_path / "scores.csv"
    args = ("score", "--as-of", "2024-10-01", "--output", str(output), "--json")
    result = run_cli(*args[:5], "--customers", str(asked), args[5], database_url=database.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unknown_customer_ids"] == ["NOPE-1", "[/bold]"]
    assert "NOPE-1" in result.stderr and "Traceback" not in result.stderr
    assert pl.read_csv(output)["customer_id"].to_list() == [known]

    asked.write_text("customer_id\nNOPE-1\n")
    refused = tmp_path / "refused.csv"
    result = run_cli(
        "score", "--as-of", "2024-10-01", "--output", str(refused), "--customers", str(asked),
        database_url=database.url,
    )  # fmt: skip
    assert result.returncode == 1 and "none of the 1 customer ids is stored" in result.stderr
    assert not refused.exists()


def test_score_without_a_champion_and_a_failed_retrain_exit_4(database, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(tmp_path / "models"))
    output = tmp_path / "scores.csv"
    assert run_cli("score", "--output", str(output), database_url=database.url).returncode == 4
    failed = run_cli("retrain", "--json", database_url=database.url)
    assert failed.returncode == 4
    assert json.loads(failed.stdout)["status"] == "failed"


def test_schedule_runs_check_until_stopped(loaded):
    database = loaded.database
    process = subprocess.Popen(
        [*_cli_command(), "schedule", "--every", "1s"],
        env=_env(database.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _log_rows(database.engine) == 0:
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert _log_rows(database.engine) >= 1


def _log_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(schema.model_retraining_log)
        ).scalar_one()


def _cli_command() -> list[str]:
    import sys
    from pathlib import Path

    return [str(Path(sys.executable).with_name("predelinq"))]


def _env(database_url: str) -> dict[str, str]:
    import os

    return {**os.environ, "DATABASE_URL": database_url}
