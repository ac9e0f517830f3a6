"""The HTTP API through a real uvicorn server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import polars as pl
import pytest

from predelinq.api import create_app
from predelinq.api.telemetry import JsonLines
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.ingest import ingest_files
from predelinq.retraining.run import retrain
from support.factories import make_history, write_files
from support.http import ADMIN, TOKEN, free_port
from support.synthetic import load_synthetic

SEED_STATUS_KEYS = {
    "new_customers_count",
    "retraining_needed",
    "reason",
    "threshold",
    "recent_retraining",
}
SEED_RUN_KEYS = {
    "retrain_id",
    "retrain_date",
    "customers_trained",
    "samples_trained",
    "auc_score",
    "model_version",
}


def _wait_for_job(client, location: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(location).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {location} did not finish")


def test_status_has_the_seeds_shape(server):
    client = server.client
    status = client.get("/retraining/status").json()
    assert set(status) == SEED_STATUS_KEYS | {"running"}
    assert set(status["recent_retraining"][0]) == SEED_RUN_KEYS


def test_trigger_returns_202_and_the_job_completes(server):
    client = server.client
    response = client.post("/retraining/trigger", headers=ADMIN)
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location == response.json()["location"]
    job = _wait_for_job(client, location)
    assert job["status"] in ("success", "rejected")
    assert job["model_version"].startswith("auto_retrain_") and job["metrics"]["auc"] > 0.6


def test_concurrent_triggers_give_one_job_and_409s(server):
    client = server.client
    with ThreadPoolExecutor(4) as pool:
        responses = list(
            pool.map(lambda _: client.post("/retraining/trigger", headers=ADMIN), range(4))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409]
    accepted = next(r for r in responses if r.status_code == 202).json()["job_id"]
    assert {r.json()["running_job_id"] for r in responses if r.status_code == 409} == {accepted}
    _wait_for_job(client, f"/retraining/jobs/{accepted}")


def test_admin_endpoints_need_the_token(server):
    client = server.client
    for path in ("/retraining/trigger", "/models/rollback"):
        assert client.post(path).status_code == 401
        assert client.post(path, headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_predict_and_errors(server):
    client, data = server.client, server.data
    customer_id = data.labels["customer_id"][0]
    score = client.post("/predict", json={"customer_id": customer_id, "as_of": "2024-10-01"})
    assert score.status_code == 200
    body = score.json()
    assert 0 <= body["risk_score"] <= 1 and body["risk_band"] in ("low", "medium", "high")
    assert len(body["top_features"]) == 5
    assert client.post("/predict", json={"customer_id": "nobody"}).status_code == 404
    batch = client.post(
        "/predict/batch", json={"customer_ids": [customer_id, "nobody"], "as_of": "2024-10-01"}
    ).json()
    assert batch["unknown_customer_ids"] == ["nobody"]
    assert batch["predictions"][0]["risk_score"] == body["risk_score"]  # the same model call


def test_hot_reload_switches_models_without_failed_requests(server):
    client, data = server.client, server.data
    before = client.get("/health").json()["model_version"]
    customer_id = data.labels["customer_id"][0]
    seen, failures, stop = set(), [], threading.Event()

    def score_continuously() -> None:
        while not stop.is_set():
            response = client.post(
                "/predict", json={"customer_id": customer_id, "as_of": "2024-10-01"}
            )
            if response.status_code == 200:
                seen.add(response.json()["model_version"])
            else:
                failures.append(response.status_code)

    scorer = threading.Thread(target=score_continuously)
    scorer.start()
    try:
        job = client.post("/retraining/trigger?wait=true&force=true", headers=ADMIN).json()
        deadline = time.monotonic() + 10
        while job["model_version"] not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        scorer.join()
    assert job["promoted"] is True and job["status"] == "success"
    assert failures == []
    assert {before, job["model_version"]} <= seen


def test_promote_and_rollback_switch_the_served_version(server):
    client = server.client
    first = client.get("/health").json()["model_version"]
    second = client.post("/retraining/trigger?wait=true&force=true", headers=ADMIN).json()[
        "model_version"
    ]
    assert client.get("/health").json()["model_version"] == second
    assert client.post("/models/rollback", headers=ADMIN).json()["champion"] == first
    assert client.get("/health").json()["model_version"] == first
    assert client.post(f"/models/{second}/promote", headers=ADMIN).status_code == 200
    assert client.get("/health").json()["model_version"] == second
    listed = {m["model_version"]: m["champion"] for m in client.get("/models").json()}
    assert listed[second] is True and listed[first] is False
    assert client.get("/metrics").text.count("predelinq_request_seconds") > 0


def test_serving_refuses_to_start_without_an_admin_token(database, tmp_path):
    from fastapi.testclient import TestClient

    from predelinq.api.factory import ConfigurationError

    settings = Settings(database_url=database.url, model_dir=tmp_path / "models")
    with (
        pytest.raises(ConfigurationError, match="PREDELINQ_ADMIN_TOKEN"),
        TestClient(create_app(settings)),
    ):
        pass
    development = settings.model_copy(update={"dev_mode": True})
    with TestClient(create_app(development)) as client:
        assert client.get("/ready").status_code == 503  # no model yet
        assert client.get("/health").json() == {"status": "ok", "model_version": None}


def test_request_log_lines_are_json_without_tokens(server, caplog):
    client = server.client
    with caplog.at_level(logging.INFO, logger="predelinq.api"):
        client.post("/models/rollback", headers={"Authorization": f"Bearer {TOKEN}x"})
        client.get("/retraining/history", headers=ADMIN)
    requests = [r for r in caplog.records if r.getMessage() == "request"]
    lines = [json.loads(JsonLines().format(record)) for record in requests]
    by_route = {line["route"]: line for line in lines}
    assert by_route["/models/rollback"]["status"] == 403
    assert by_route["/retraining/history"]["status"] == 200
    assert by_route["/retraining/history"]["ms"] > 0
    assert TOKEN not in caplog.text


def test_schema_documents_auth_errors_on_every_protected_route(server):
    client = server.client
    paths = client.get("/openapi.json").json()["paths"]
    protected = [
        (path, method, operation)
        for path, methods in paths.items()
        if path.startswith(("/predict", "/models", "/retraining"))
        for method, operation in methods.items()
    ]
    assert len(protected) >= 10
    for path, method, operation in protected:
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
    conflict = paths["/retraining/trigger"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("JobConflict")


def test_metrics_report_predictions_jobs_new_customers_and_version(server, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    client, data, settings = server.client, server.data, server.settings
    version = client.get("/health").json()["model_version"]
    ids = data.labels["customer_id"].unique().to_list()[:3]
    for customer_id in ids:
        client.post("/predict", json={"customer_id": customer_id, "as_of": "2024-10-01"})
    client.post("/predict/batch", json={"customer_ids": ids, "as_of": "2024-10-01"})
    job = _wait_for_job(
        client, client.post("/retraining/trigger", headers=ADMIN).json()["location"]
    )
    # three customers with labels arrive after the retrain: new, until the next one
    engine = open_database(settings)
    ingest_files(engine, write_files(tmp_path, make_history(["N1", "N2", "N3"])))
    engine.dispose()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }
    assert samples[("predelinq_predictions_total", (("model_version", version),))] == 6
    assert samples[("predelinq_retrain_jobs_total", (("status", job["status"]),))] == 1
    assert samples[("predelinq_retrain_job_seconds_count", ())] == 1
    assert samples[("predelinq_new_customers", ())] == 3  # counted at the scrape
    assert client.get("/retraining/status").json()["new_customers_count"] == 3
    served = client.get("/health").json()["model_version"]
    assert samples[("predelinq_model_info", (("version", served),))] == 1
    routes = {dict(labels).get("route") for name, labels in samples if "request_seconds" in name}
    assert {"/predict", "/predict/batch", "/retraining/trigger"} <= routes


def test_two_workers_report_one_set_of_metrics(database, synthetic, tmp_path):
    """``predelinq serve --workers 2``: whichever worker answers a scrape reports every
    worker's counts (prometheus_client's multiprocess mode) and each worker's model."""
    from prometheus_client.parser import text_string_to_metric_families

    loaded = load_synthetic(
        database, synthetic, model_dir=tmp_path / "models", threads=1, max_customers="all"
    )
    data, settings = loaded.data, loaded.settings
    version = retrain(database.engine, settings, reason="first model").model_version
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREDELINQ_", "PROMETHEUS"))}
    env |= {
        "DATABASE_URL": database.url,
        "PREDELINQ_MODEL_DIR": str(settings.model_dir),
        "PREDELINQ_ADMIN_TOKEN": TOKEN,
        "PREDELINQ_THREADS": "1",
    }
    command = [str(Path(sys.executable).with_name("predelinq")), "serve", "--port", str(port)]
    printed = tmp_path / "serve.out"
    server = subprocess.Popen(
        [*command, "--workers", "2"],
        env={**env, "COLUMNS": "200"},
        cwd=tmp_path,
        stdout=printed.open("w"),
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        customer_id = data.labels["customer_id"][0]
        for _ in range(40):  # a new connection each: the workers share them out
            body = {"customer_id": customer_id, "as_of": "2024-10-01"}
            assert httpx.post(f"{base}/predict", json=body).status_code == 200

        def scrape() -> list:
            families = text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
            return [sample for family in families for sample in family.samples]

        deadline = time.monotonic() + 60  # the second worker starts on its own
        while len({s.labels["pid"] for s in scrape() if s.name == "predelinq_model_info"}) < 2:
            assert time.monotonic() < deadline, "the second worker never served a model"
            time.sleep(0.2)
        for _ in range(4):  # whichever worker answers
            samples = scrape()
            predictions = [s for s in samples if s.name == "predelinq_predictions_total"]
            assert [(s.labels["model_version"], s.value) for s in predictions] == [(version, 40)]
            served = {s.labels["pid"]: s.value for s in samples if s.name == "predelinq_model_info"}
            assert list(served.values()) == [1.0, 1.0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    # the command says where the dashboard is
    assert f"dashboard: {base}/ui" in printed.read_text()


def test_api_scores_as_the_score_command_with_the_early_stopped_trees(server):
    """The served model scores with the trees early stopping kept, as training measured it
    and as ``predelinq score`` does; its contributions add up to that score's margin."""
    from predelinq.serving.score import score_customers

    client, data, settings = server.client, server.data, server.settings
    ids = data.labels["customer_id"].unique().sort().to_list()[:5]
    engine = open_database(settings)
    offline = score_customers(
        engine, settings, as_of=date(2024, 10, 1), customer_ids=pl.Series(ids)
    )
    engine.dispose()
    batch = client.post("/predict/batch", json={"customer_ids": ids, "as_of": "2024-10-01"})
    served = {p["customer_id"]: p["risk_score"] for p in batch.json()["predictions"]}
    assert served == dict(zip(offline["customer_id"], offline["risk_score"], strict=True))
    one = client.post("/predict", json={"customer_id": ids[0], "as_of": "2024-10-01"}).json()
    assert one["risk_score"] == served[ids[0]]
