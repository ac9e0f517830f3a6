"""Every score carries the data's freshness, and stale data is warned about: the library,
the `score` command and the API, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl

from predelinq.api import create_app
from predelinq.config import Settings
from predelinq.features.export import features_as_of
from predelinq.ingest import ingest_files
from support.factories import make_customer, make_payment, make_transaction, write_files
from support.http import serve


def test_the_newest_event_before_the_date_is_reported(database, tmp_path):
    """Transactions, payment due dates and payments count; rows on or after the date do not;
    a customer without events has none."""
    tables = {
        "customers": [make_customer("C1"), make_customer("C2")],
        "transactions": [
            make_transaction("C1", "T1", txn_time="2024-02-01T12:00:00"),
            make_transaction("C1", "T2", txn_time="2024-03-10T08:30:00"),
            make_transaction("C1", "T3", txn_time="2024-05-01T00:00:00"),  # after every date
        ],
        "payments": [
            make_payment("C1", due_date="2024-03-15", paid_date="2024-03-20"),
            # paid early for a later due date: not used before it is due
            make_payment("C1", due_date="2024-06-15", paid_date="2024-03-25"),
        ],
    }
    ingest_files(database.engine, write_files(tmp_path, tables))
    settings = Settings(database_url=database.url)

    def fresh(day: date) -> dict[str, tuple]:
        frame = features_as_of(database.engine, settings, day, ["C1", "C2"], freshness=True)
        rows = frame.select("customer_id", "last_event_at", "data_age_days").rows()
        return {customer: (at, age) for customer, at, age in rows}

    assert fresh(date(2024, 4, 1)) == {
        "C1": (datetime(2024, 3, 20), 12),  # the payment
        "C2": (None, None),
    }
    assert fresh(date(2024, 3, 16))["C1"] == (datetime(2024, 3, 15), 1)  # the due date
    assert fresh(date(2024, 3, 12))["C1"] == (datetime(2024, 3, 10, 8, 30), 1)  # the purchase
    assert fresh(date(2024, 2, 1))["C1"] == (None, None)  # nothing strictly before


def _expected_age(data, as_of: date) -> pl.DataFrame:
    """The newest event per customer before ``as_of`` (a payment counts once due), written
    independently from the generator's frames."""
    cut = datetime.combine(as_of, datetime.min.time())
    transactions = data.transactions.select(
        "customer_id", at=pl.col("txn_time").cast(pl.Datetime("us"))
    )
    payments = data.payments.filter(pl.col("due_date").cast(pl.Datetime("us")) < cut)
    due = payments.select("customer_id", at=pl.col("due_date").cast(pl.Datetime("us")))
    paid = payments.select("customer_id", at=pl.col("paid_date").cast(pl.Datetime("us")))
    events = pl.concat([transactions, due, paid]).drop_nulls().filter(pl.col("at") < cut)
    return events.group_by("customer_id").agg(pl.col("at").max().alias("expected"))


def _score(
    database, settings, tmp_path: Path, as_of: str
) -> tuple[subprocess.CompletedProcess, Path]:
    output = tmp_path / f"scores-{as_of}.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDELINQ_")}
    env |= {"DATABASE_URL": database.url, "PREDELINQ_MODEL_DIR": str(settings.model_dir)}
    command = [str(Path(sys.executable).with_name("predelinq")), "score", "--as-of", as_of]
    result = subprocess.run(
        [*command, "--output", str(output), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, output


def test_score_writes_each_customers_freshness_and_warns_on_stale_data(champion, tmp_path):
    database, data, settings = champion.database, champion.data, champion.settings
    newest = max(data.transactions["txn_time"].cast(pl.Datetime("us")))
    fresh_day = (newest.date()).isoformat()
    result, output = _score(database, settings, tmp_path, fresh_day)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["stale_data"] is False and summary["data_age_days"] <= 1
    scores = pl.read_csv(output, try_parse_dates=True)
    assert scores.columns == [
        "customer_id",
        "risk_score",
        "model_version",
        "last_event_at",
        "data_age_days",
    ]
    expected = _expected_age(data, newest.date())
    joined = scores.join(expected, on="customer_id", how="left")
    assert joined.height == scores.height
    assert (joined["last_event_at"] == joined["expected"]).all()
    days = (pl.lit(newest.date()).cast(pl.Datetime("us")) - pl.col("expected")).dt.total_days()
    assert joined.select((pl.col("data_age_days") == days).all()).item()

    stale_day = "2031-06-01"  # years after the data
    result, output = _score(database, settings, tmp_path, stale_day)
    assert result.returncode == 0, result.stderr
    line = " ".join(result.stderr.split())
    assert "the newest event of the scored customers is" in line
    assert f"days before {stale_day} ({newest:%Y-%m-%d})" in line
    assert "PREDELINQ_STALE_DATA_DAYS" in line
    summary = json.loads(result.stdout)
    assert summary["stale_data"] is True
    assert summary["data_age_days"] == (datetime(2031, 6, 1) - newest).days
    assert pl.read_csv(output)["data_age_days"].min() == summary["data_age_days"]


def test_the_api_reports_freshness_per_score(champion):
    data, settings = champion.data, champion.settings
    as_of = date(2024, 10, 1)
    expected = dict(_expected_age(data, as_of).rows())
    ids = sorted(expected)[:20]
    with serve(create_app(settings), timeout=60) as client:
        single = client.post("/predict", json={"customer_id": ids[0], "as_of": str(as_of)})
        assert single.status_code == 200, single.text
        body = single.json()
        assert datetime.fromisoformat(body["last_event_at"]) == expected[ids[0]]
        midnight = datetime.combine(as_of, datetime.min.time())
        assert body["data_age_days"] == (midnight - expected[ids[0]]).days
        batch = client.post("/predict/batch", json={"customer_ids": ids, "as_of": str(as_of)})
        assert batch.status_code == 200, batch.text
        for prediction in batch.json()["predictions"]:
            at = datetime.fromisoformat(prediction["last_event_at"])
            assert at == expected[prediction["customer_id"]]
            assert prediction["data_age_days"] == (midnight - at).days
