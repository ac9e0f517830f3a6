"""GET /monitoring through a real server: 202 while the first report is computed in the
background, then the JSON of `predelinq monitor --json` (the same keys and figures), its PSI
as Prometheus gauges, and the read token enforced."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from predelinq.api import create_app
from predelinq.monitoring.report import monitor
from support.http import serve
from support.synthetic import Loaded

READ_TOKEN = "test-read-token"
READER = {"Authorization": f"Bearer {READ_TOKEN}"}
WAIT_SECONDS = 120


def test_monitoring_is_computed_in_the_background_and_served_from_the_cache(champion: Loaded):
    settings = champion.settings.model_copy(update={"read_token": SecretStr(READ_TOKEN)})
    with serve(create_app(settings)) as client:
        assert client.get("/monitoring").status_code == 401
        assert client.get("/monitoring", headers={"Authorization": "Bearer wrong"}).status_code in (
            401,
            403,
        )
        first = client.get("/monitoring", headers=READER)
        deadline = time.monotonic() + WAIT_SECONDS
        response = first
        while response.status_code == 202:
            assert response.headers["Retry-After"]
            assert time.monotonic() < deadline, "the monitoring report never came"
            time.sleep(0.2)
            response = client.get("/monitoring", headers=READER)
        assert response.status_code == 200, response.text
        body = response.json()
        again = client.get("/monitoring", headers=READER)  # the cached report, not a new one
        assert again.status_code == 200 and again.json() == body
        assert int(again.headers["Age"]) >= 0
        metrics = client.get("/metrics", headers=READER).text

    expected = monitor(champion.engine, settings).as_json()
    assert list(body) == list(expected)
    assert body["model_version"] == expected["model_version"]
    assert body["score_psi"] == pytest.approx(expected["score_psi"])
    assert body["features"] == pytest.approx(expected["features"])
    assert [row["auc"] for row in body["performance"]] == pytest.approx(
        [row["auc"] for row in expected["performance"]]
    )
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    version = (("model_version", body["model_version"]),)
    assert samples[("predelinq_drift_score_psi", version)] == pytest.approx(body["score_psi"])
    for name, value in body["features"].items():
        assert samples[("predelinq_drift_feature_psi", (("feature", name),))] == pytest.approx(
            value
        )
