"""The prediction log through a real server and the real command: /predict and /predict/batch
rows land with their source, version, band and request id; GET /predictions reads a
customer's history behind the read token; `predelinq score` logs its run; with
``log_predictions`` off nothing is logged."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from predelinq.api import create_app
from predelinq.clock import utc_now
from predelinq.db.schema import predictions
from predelinq.monitoring.predictions import log_scores
from predelinq.serving.score import risk_band
from predelinq.statuses import PredictionSource
from support.cli import run_cli
from support.http import ADMIN, serve
from support.synthetic import Loaded

READ_TOKEN = "test-read-token"
READER = {"Authorization": f"Bearer {READ_TOKEN}"}
WAIT_SECONDS = 30


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(predictions)).scalar_one()


def _wait_for_rows(engine, rows: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _count(engine) < rows:
        assert time.monotonic() < deadline, f"{rows} logged rows never landed"
        time.sleep(0.05)


def _logged_total(client: httpx.Client) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    samples = [sample for family in families for sample in family.samples]
    return sum(s.value for s in samples if s.name == "predelinq_predictions_logged_total")


def test_served_scores_are_logged_and_read_back(server):
    client, settings = server.client, server.settings
    first, second = server.data.labels["customer_id"].unique().sort().to_list()[:2]
    before = utc_now()
    one = client.post("/predict", json={"customer_id": first, "as_of": "2024-10-01"})
    batch = client.post(
        "/predict/batch", json={"customer_ids": [first, second, "nobody"], "as_of": "2024-09-01"}
    )
    with ThreadPoolExecutor(4) as pool:  # one customer, four requests: four rows
        again = list(
            pool.map(
                lambda _: client.post(
                    "/predict", json={"customer_id": second, "as_of": "2024-08-01"}
                ),
                range(4),
            )
        )
    assert all(r.status_code == 200 for r in [one, batch, *again])
    _wait_for_rows(server.loaded.engine, 1 + 2 + 4)  # "nobody" is not logged
    after = utc_now()

    history = client.get("/predictions", params={"customer_id": first}).json()
    assert [row["source"] for row in history] == ["batch", "predict"]  # newest first
    served, batched = one.json(), batch.json()
    predict_row = history[1]
    assert predict_row == {
        "customer_id": first,
        "as_of": "2024-10-01",
        "model_version": served["model_version"],
        "score": pytest.approx(served["risk_score"], rel=1e-12),
        "band": served["risk_band"],
        "served_at": predict_row["served_at"],
        "source": "predict",
        "request_id": one.headers["x-request-id"],
    }
    assert before <= datetime.fromisoformat(predict_row["served_at"]) <= after
    batch_scores = {p["customer_id"]: p for p in batched["predictions"]}
    assert history[0]["as_of"] == "2024-09-01"
    assert history[0]["score"] == pytest.approx(batch_scores[first]["risk_score"], rel=1e-12)
    assert history[0]["band"] == risk_band(history[0]["score"], settings.risk_bands)
    assert history[0]["request_id"] == batch.headers["x-request-id"] != one.headers["x-request-id"]

    others = client.get("/predictions", params={"customer_id": second}).json()
    assert sorted(row["request_id"] for row in others if row["source"] == "predict") == sorted(
        r.headers["x-request-id"] for r in again
    )
    assert [row["request_id"] for row in others if row["source"] == "batch"] == [
        batch.headers["x-request-id"]
    ]
    expected = again[0].json()["risk_score"]
    predicted = [row["score"] for row in others if row["source"] == "predict"]
    assert predicted == pytest.approx([expected] * 4, rel=1e-12)
    assert client.get("/predictions", params={"customer_id": "nobody"}).json() == []
    assert _logged_total(client) == 7


def test_reads_need_the_read_token_and_logging_off_logs_nothing(champion: Loaded):
    engine = champion.engine
    customer = champion.data.labels["customer_id"].unique().sort().to_list()[0]
    log_scores(
        engine, customer_ids=[customer] * 3, as_of=date(2024, 10, 1), model_version="v0",
        scores=np.array([0.1, 0.2, 0.3]), bands=["low"] * 3, source=PredictionSource.SCORE,
        request_id="earlier", retention_days=400,
    )  # fmt: skip
    settings = champion.settings.model_copy(
        update={"read_token": SecretStr(READ_TOKEN), "log_predictions": False}
    )
    query = {"customer_id": customer}
    with serve(create_app(settings)) as client:
        scored = client.post(
            "/predict", json={"customer_id": customer, "as_of": "2024-10-01"}, headers=READER
        )
        assert scored.status_code == 200 and scored.headers["x-request-id"]
        assert client.get("/predictions", params=query).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert client.get("/predictions", params=query, headers=wrong).status_code == 403
        read = client.get("/predictions", params=query | {"limit": 2}, headers=READER)
        assert read.status_code == 200 and len(read.json()) == 2
        assert {row["request_id"] for row in read.json()} == {"earlier"}
        admin = client.get("/predictions", params=query, headers=ADMIN)
        assert admin.status_code == 200 and len(admin.json()) == 3
        for bad in ({"limit": 1001}, {"limit": 0}, {}):
            params = (query if bad else {}) | bad
            assert client.get("/predictions", params=params, headers=READER).status_code == 422
    assert _count(engine) == 3  # the server has stopped (a writer would have flushed): none


def test_the_score_command_logs_its_run(champion: Loaded, tmp_path: Path, monkeypatch):
    url, engine = champion.database.url, champion.engine
    output = tmp_path / "scores.csv"
    monkeypatch.setenv("PREDELINQ_LOG_PREDICTIONS", "false")
    off = run_cli("score", "--output", str(output), "--as-of", "2024-10-01", database_url=url)
    assert off.returncode == 0, off.stderr
    assert _count(engine) == 0
    monkeypatch.delenv("PREDELINQ_LOG_PREDICTIONS")

    on = run_cli("score", "--output", str(output), "--as-of", "2024-10-01", database_url=url)
    assert on.returncode == 0, on.stderr
    scores = pl.read_csv(output)
    with engine.connect() as connection:
        rows = connection.execute(select(predictions).order_by(predictions.c.customer_id)).all()
    assert [r.customer_id for r in rows] == scores["customer_id"].to_list()
    assert np.allclose([r.score for r in rows], scores["risk_score"].to_numpy(), rtol=1e-9)
    assert {(r.source, r.as_of, r.model_version) for r in rows} == {
        ("score", date(2024, 10, 1), scores["model_version"][0])
    }
    assert len({r.request_id for r in rows}) == 1 and len(rows[0].request_id) == 36
    bands = [risk_band(r.score, champion.settings.risk_bands) for r in rows]
    assert [r.band for r in rows] == bands and len(set(bands)) > 1
