"""`check` with every trigger, on SQLite and PostgreSQL: new labels for customers already
trained on make it retrain (the issue's acceptance), a dry run writes nothing, the champion's
age, and the cooldown that holds every trigger but the seed's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import func, select, update

from predelinq.clock import utc_now
from predelinq.db import schema
from predelinq.db.summary import data_as_of
from predelinq.ingest import ingest_files
from predelinq.modeling.registry import current_champion
from predelinq.retraining.check import decide
from predelinq.retraining.run import check_and_retrain, retrain
from predelinq.retraining.status import new_customer_count, new_label_count
from support.cli import run_cli

# drift and realised performance take seconds and are tested in tests/monitoring
QUIET_TOML = """
[triggers]
cooldown_hours = {cooldown}
drift.enabled = false
performance.enabled = false
"""


def count(engine, table, *conditions) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(table).where(*conditions)
        return connection.execute(query).scalar_one()


def one_label_arrives(engine) -> None:
    """One label row stored (again) after the last retrain: unused, and far below the
    new_labels threshold. Drift, performance and age fire only while some label is unused."""
    with engine.begin() as connection:
        first = connection.execute(
            select(schema.labels.c.customer_id, schema.labels.c.observation_date).limit(1)
        ).one()
        connection.execute(
            update(schema.labels)
            .where(
                schema.labels.c.customer_id == first.customer_id,
                schema.labels.c.observation_date == first.observation_date,
            )
            .values(ingested_at=utc_now() + timedelta(seconds=1))
        )


def label_count(engine) -> int:
    with engine.connect() as connection:
        return new_label_count(connection)


def later_labels(loaded, directory: Path, *, customers: int, per_customer: int) -> Path:
    """``customers * per_customer`` new label rows for labelled customers: on the 15th of the
    months they were observed in (dates no label has), each customer's worst label."""
    labels = loaded.data.labels
    chosen = labels["customer_id"].unique().sort().head(customers)
    rows = (
        labels.filter(pl.col("customer_id").is_in(chosen.implode()))
        .group_by("customer_id")
        .agg(pl.col("label").max())
        .join(
            pl.DataFrame(
                {"observation_date": [date(2024, 4 + i, 15) for i in range(per_customer)]}
            ),
            how="cross",
        )
        .select("customer_id", "observation_date", "label")
    )
    assert rows.height == customers * per_customer
    path = directory / "later_labels.parquet"
    rows.write_parquet(path)
    return path


def configure(monkeypatch, loaded, tmp_path: Path, *, cooldown: float) -> None:
    """The command line's settings: the test's models, two threads, the given cooldown."""
    toml = tmp_path / "predelinq.toml"
    toml.write_text(QUIET_TOML.format(cooldown=cooldown))
    monkeypatch.setenv("PREDELINQ_CONFIG", str(toml))
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(loaded.settings.model_dir))
    monkeypatch.setenv("PREDELINQ_THREADS", "2")


def with_triggers(settings, **changes):
    return settings.model_copy(update={"triggers": settings.triggers.model_copy(update=changes)})


def test_new_labels_for_trained_customers_make_check_retrain(loaded, tmp_path, monkeypatch):
    """The acceptance test: a first model on every customer, then 1,000 new labels for 125 of
    them through the real ingest; `check` retrains with new_labels in the reason, on those
    customers first."""
    engine, url = loaded.engine, loaded.database.url
    configure(monkeypatch, loaded, tmp_path, cooldown=0)
    first = retrain(engine, loaded.settings, max_customers="all", seed=1, reason="first model")
    assert first.promoted
    with engine.connect() as connection:
        assert (new_customer_count(connection), new_label_count(connection)) == (0, 0)
    quiet = json.loads(run_cli("check", "--json", database_url=url).stdout)
    assert quiet["retraining_needed"] is False and "result" not in quiet

    ingest_files(engine, {"labels": later_labels(loaded, tmp_path, customers=125, per_customer=8)})
    assert label_count(engine) == 1000

    done = run_cli("check", "--json", database_url=url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    triggers = {trigger["name"]: trigger for trigger in report["triggers"]}
    assert triggers["new_labels"] == {
        "name": "new_labels",
        "fired": True,
        "value": 1000,
        "threshold": 500,
        "detail": "1000 >= 500",
        "held": False,
    }
    assert triggers["new_customers"]["fired"] is False and triggers["new_customers"]["value"] == 0
    assert report["retraining_needed"] is True and report["reason"] == "new_labels: 1000 >= 500"
    assert report["result"]["status"] in {"success", "rejected"}  # a run, whatever the gate says
    version = report["result"]["model_version"]
    log = schema.model_retraining_log
    with engine.connect() as connection:
        reason = connection.execute(
            select(log.c.trigger_reason).where(log.c.model_version == version)
        ).scalar_one()
        learnt = connection.execute(
            select(schema.model_training_customers.c.customer_id).where(
                schema.model_training_customers.c.model_version == version
            )
        ).scalars()
        relabelled = set(loaded.data.labels["customer_id"].unique().sort().head(125))
        assert relabelled <= set(learnt)  # 200 per retrain: the relabelled 125 first
    assert reason == "new_labels: 1000 >= 500"
    assert label_count(engine) == 0
    again = json.loads(run_cli("check", "--json", database_url=url).stdout)
    assert again["retraining_needed"] is False and "result" not in again


def test_a_dry_run_decides_and_writes_nothing(loaded, tmp_path, monkeypatch):
    engine, url = loaded.engine, loaded.database.url
    configure(monkeypatch, loaded, tmp_path, cooldown=24)
    labelled = loaded.data.labels["customer_id"].n_unique()

    done = run_cli("check", "--dry-run", "--json", database_url=url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["retraining_needed"] is True
    assert report["reason"] == f"new_customers: {labelled} >= 50" and "result" not in report
    text = run_cli("check", "--dry-run", database_url=url)
    assert text.returncode == 0, text.stderr
    assert f"Dry run: would retrain (new_customers: {labelled} >= 50)" in text.stdout
    assert f"Threshold reached ({labelled} >= 50)" in text.stdout
    for table in (
        schema.model_retraining_log,
        schema.model_versions,
        schema.customer_training_status,
        schema.champion_changes,
    ):
        assert count(engine, table) == 0, table.name
    assert not loaded.settings.model_dir.exists()


def test_an_old_champion_retrains_once_the_cooldown_is_over(loaded):
    engine = loaded.engine
    settings = with_triggers(
        loaded.settings,
        max_age=loaded.settings.triggers.max_age.model_copy(update={"enabled": True}),
        drift=loaded.settings.triggers.drift.model_copy(update={"enabled": False}),
        performance=loaded.settings.triggers.performance.model_copy(update={"enabled": False}),
    )
    assert retrain(engine, settings, max_customers="all", seed=2).promoted
    young = {t.name: t for t in decide(engine, settings).triggers}["max_age"]
    assert not young.fired and not young.held and young.value is not None and young.value < 1

    now = utc_now()
    with engine.begin() as connection:
        champion = current_champion(connection)
        connection.execute(
            update(schema.model_versions)
            .where(schema.model_versions.c.model_version == champion)
            .values(created_at=now - timedelta(days=100))
        )
    unchanged = {t.name: t for t in decide(engine, settings).triggers}["max_age"]
    assert not unchanged.fired and "no unused labels" in unchanged.detail
    one_label_arrives(engine)
    held = check_and_retrain(engine, settings)
    max_age = {t.name: t for t in held.decision.triggers}["max_age"]
    assert held.result is None and max_age.held and not max_age.fired
    assert "held by the cooldown" in max_age.detail

    with engine.begin() as connection:
        connection.execute(
            update(schema.model_retraining_log).values(retrain_date=now - timedelta(hours=25))
        )
    outcome = check_and_retrain(engine, settings)
    assert outcome.result is not None and outcome.result.status in {"success", "rejected"}
    assert outcome.result.reason.startswith("max_age: champion 100.0 days old >= 90")
    assert count(engine, schema.model_retraining_log) == 2


def test_the_cooldown_holds_new_labels_but_not_new_customers(loaded, tmp_path):
    engine, settings = loaded.engine, loaded.settings
    settings = with_triggers(
        settings,
        drift=settings.triggers.drift.model_copy(update={"enabled": False}),
        performance=settings.triggers.performance.model_copy(update={"enabled": False}),
    )
    assert retrain(engine, settings, seed=3).customers_trained == 200  # the seed's default
    ingest_files(engine, {"labels": later_labels(loaded, tmp_path, customers=100, per_customer=6)})
    labelled = loaded.data.labels["customer_id"].n_unique()

    outcome = check_and_retrain(engine, settings)
    triggers = {t.name: t for t in outcome.decision.triggers}
    assert triggers["new_labels"].held and (triggers["new_labels"].value or 0) >= 600
    assert triggers["new_customers"].fired and not triggers["new_customers"].held
    assert outcome.result is not None
    assert outcome.result.reason == f"new_customers: {labelled - 200} >= 50"
    assert outcome.status["reason"] == f"New customers: {labelled - 200}"  # the seed's status


def test_ingest_stamps_labels_inserted_or_changed(loaded, tmp_path):
    """``labels.ingested_at``: one value per ingest, on new and changed rows only."""
    engine, labels = loaded.engine, loaded.data.labels
    stamps = schema.labels.c.ingested_at
    with engine.connect() as connection:
        (first,) = connection.execute(select(stamps).distinct()).scalars().all()
    assert first is not None and label_count(engine) == labels.height  # none trained on yet

    changed = labels.head(3).with_columns(label=1 - pl.col("label"))
    new = labels.head(1).with_columns(observation_date=pl.lit(date(2024, 4, 20)))
    path = tmp_path / "labels.parquet"
    pl.concat([changed, labels.slice(3, 5), new]).write_parquet(path)
    before = utc_now()
    report = ingest_files(engine, {"labels": path})
    assert (report.counts["labels"].inserted, report.counts["labels"].updated) == (1, 3)

    with engine.connect() as connection:
        rows = connection.execute(select(stamps, func.count()).group_by(stamps)).all()
    assert sorted(count for _, count in rows) == [4, labels.height - 3]
    (second,) = [stamp for stamp, count in rows if count == 4]
    assert second >= before > first


def test_drift_and_performance_are_observed_only_when_needed(loaded):
    """With a champion and no cooldown, the drift and realised-performance figures are computed
    as of the data's own today; during the cooldown they are not computed at all."""
    engine = loaded.engine
    assert retrain(engine, loaded.settings, max_customers="all", seed=4).promoted
    sensitive = with_triggers(
        loaded.settings,
        cooldown_hours=0.0,
        drift=loaded.settings.triggers.drift.model_copy(update={"score_psi": 1e-9}),
    )
    one_label_arrives(engine)
    decision = decide(engine, sensitive)
    with engine.connect() as connection:
        assert decision.observed.as_of == data_as_of(connection)
    assert decision.observed.score_psi is not None and decision.observed.feature_psi
    triggers = {t.name: t for t in decision.triggers}
    assert triggers["drift"].fired and decision.reason.startswith("drift: score PSI")
    assert not triggers["performance"].fired and triggers["performance"].detail

    cooling = decide(engine, with_triggers(sensitive, cooldown_hours=24.0))
    assert cooling.observed.score_psi is None and cooling.observed.realised is None
    assert cooling.observed.as_of is None and not cooling.retrain
    drift = {t.name: t for t in cooling.triggers}["drift"]
    assert drift.detail.startswith("no PSI: not computed; cooldown: last retrain")


def test_check_in_the_cooldown_loads_no_ml_library(loaded, tmp_path, monkeypatch):
    """The cron case after a retrain: the default triggers, held by the cooldown, cost a few
    queries; drift and realised performance are not computed, so nothing heavy is imported."""
    assert retrain(loaded.engine, loaded.settings, max_customers="all", seed=5).promoted
    (tmp_path / "empty.toml").write_text("")
    probe = (
        "import sys\n"
        "from predelinq.cli.app import app\n"
        "try:\n"
        "    app(['check', '--json'], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = ('xgboost', 'polars', 'numpy', 'pyarrow', 'duckdb')\n"
        "    print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": loaded.database.url,
        "PREDELINQ_CONFIG": str(tmp_path / "empty.toml"),
        "PREDELINQ_MODEL_DIR": str(loaded.settings.model_dir),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
    report = json.loads(result.stdout)
    assert report["retraining_needed"] is False and report["as_of"] is None
    drift = {t["name"]: t for t in report["triggers"]}["drift"]
    assert drift["value"] is None and drift["detail"].startswith("no PSI: not computed; cooldown")
