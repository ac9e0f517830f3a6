"""`predelinq monitor` end to end on both databases: its JSON keys are the fixed ones, its
drift is the drift report's, and its realised AUC is the one computed here, apart from the
code under test, from the prediction log and the labels. Without a champion: one line and an
exit code, no traceback."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from predelinq.db.schema import labels, predictions
from predelinq.monitoring.drift import drift_report
from predelinq.serving.score import score_customers
from support.cli import run_cli
from support.synthetic import Loaded

AS_OF = date(2025, 1, 1)  # the day after the standard lender's last event: every label matured
FIXED_KEYS = [
    "as_of",
    "model_version",
    "score_psi",
    "features",
    "drifted_features",
    "performance",
    "triggers",
]


def _independent_join(loaded: Loaded) -> pl.DataFrame:
    """Each label with the latest score logged for its customer and date, and its month."""
    with loaded.engine.connect() as connection:
        logged = pl.DataFrame(
            connection.execute(
                select(predictions.c.customer_id, predictions.c.as_of, predictions.c.score)
            ).all(),
            schema=["customer_id", "observation_date", "score"],
            orient="row",
        )
        rows = pl.DataFrame(
            connection.execute(
                select(labels.c.customer_id, labels.c.observation_date, labels.c.label)
            ).all(),
            schema=["customer_id", "observation_date", "label"],
            orient="row",
        )
    return rows.join(logged, on=["customer_id", "observation_date"]).with_columns(
        period=pl.col("observation_date").dt.strftime("%Y-%m")
    )


def test_monitor_reports_the_fixed_keys_and_the_realised_auc_of_the_log(champion: Loaded):
    engine, settings = champion.engine, champion.settings
    months = champion.data.labels.partition_by("observation_date", as_dict=True)
    for (day,), group in sorted(months.items())[-3:]:  # three months served and logged
        score_customers(engine, settings, as_of=day, customer_ids=group["customer_id"])
    joined = _independent_join(champion)
    assert joined.height > 0

    done = run_cli("monitor", "--as-of", AS_OF.isoformat(), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert list(report)[: len(FIXED_KEYS)] == FIXED_KEYS
    drift = drift_report(engine, settings, AS_OF)
    assert report["model_version"] == drift.model_version
    assert report["score_psi"] == pytest.approx(drift.score_psi)
    assert report["features"] == pytest.approx(drift.features)
    assert report["drifted_features"] == drift.drifted_features
    assert [t["name"] for t in report["triggers"]] == [
        "new_customers",
        "new_labels",
        "drift",
        "performance",
        "max_age",
    ]
    logged_months = set(joined["period"])
    for row in report["performance"]:
        if row["period"] not in logged_months:
            assert row["logged"] == 0
            continue
        month = joined.filter(pl.col("period") == row["period"])
        assert (row["rows"], row["logged"], row["rescored"]) == (month.height, month.height, 0)
        expected = roc_auc_score(month["label"].to_numpy(), month["score"].to_numpy())
        assert row["auc"] == pytest.approx(expected, abs=1e-12)
        # the bootstrap interval is a point only where every resample ranks perfectly
        assert row["auc_low"] <= row["auc"] <= row["auc_high"]
        assert row["auc_low"] < row["auc_high"] or row["auc"] == 1.0
    assert logged_months <= {row["period"] for row in report["performance"]}


def test_monitor_without_a_champion_says_so_in_one_line(loaded: Loaded):
    done = run_cli("monitor", "--json")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "champion" in done.stderr.lower() and len(done.stderr.strip().splitlines()) == 1
