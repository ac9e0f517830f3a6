"""The API under load and hostile input, through a real uvicorn server on both databases:
health stays responsive while scoring is in flight, large batches are scored in chunks, and
bodies, echoes, dates, headers and tokens are bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import polars as pl
import pytest
from pydantic import SecretStr

from predelinq.api import create_app
from predelinq.api.factory import ConfigurationError
from predelinq.config import Settings
from predelinq.db.readers import read_inputs
from support.http import ADMIN, TOKEN, free_port, serve

READ_TOKEN = "hardening-read"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
AS_OF = "2024-10-01"


# --- item 18: health under load, chunked batches ---------------------------------------------


def test_health_answers_while_batches_and_predicts_are_in_flight(champion):
    """Scoring used to run on the event loop (/predict) and in the request thread pool
    (/predict/batch, as /health): a probe waited behind all of it (18 s behind eight
    100,000-id batches). Here one pooled thread, three 50,000-id batches and 16 clients
    posting /predict; /health and /ready must answer while they are in flight."""
    data, settings = champion.data, champion.settings
    settings = settings.model_copy(update={"serve_threads": 1})
    known = data.customers["customer_id"].to_list()
    ids = known + [f"U-{k:06d}" for k in range(50_000 - len(known))]
    finished: list[float] = []
    with serve(create_app(settings)) as client:

        def batch(_: int) -> int:
            with httpx.Client(base_url=client.base_url, timeout=300) as own:
                response = own.post("/predict/batch", json={"customer_ids": ids, "as_of": AS_OF})
            finished.append(time.monotonic())
            return response.status_code

        def predicts(index: int) -> list[int]:
            with httpx.Client(base_url=client.base_url, timeout=300) as own:
                return [
                    own.post(
                        "/predict", json={"customer_id": known[(index + k) % 160], "as_of": AS_OF}
                    ).status_code
                    for k in range(40)
                ]

        with ThreadPoolExecutor(20) as pool:
            batches = [pool.submit(batch, k) for k in range(3)]
            singles = [pool.submit(predicts, k) for k in range(16)]
            time.sleep(0.3)  # the load is under way
            probes: list[tuple[float, float, tuple[int, int]]] = []
            while not all(future.done() for future in batches) and len(probes) < 20:
                began = time.monotonic()
                statuses = (client.get("/health").status_code, client.get("/ready").status_code)
                probes.append((began, time.monotonic() - began, statuses))
                time.sleep(0.1)
            assert [future.result() for future in batches] == [200] * 3
            assert all(code == 200 for future in singles for code in future.result())
    assert probes, "the batches finished before the first probe: make the load heavier"
    in_flight = [probe for probe in probes if probe[0] + probe[1] < max(finished)]
    assert in_flight, "no probe answered while a batch was still running"
    # a generous bound (the machine may be busy); bench/serve.py measures the real latency
    assert all(seconds < 1.0 and statuses == (200, 200) for _, seconds, statuses in in_flight), (
        probes
    )


def test_a_batch_is_scored_in_chunks_with_the_scores_of_single_requests(server, monkeypatch):
    """Chunks of 7: a 160-id batch (unknown ids among them) takes 26 steps and gives every
    customer exactly its /predict score, in the order of the ids, unknown ids listed."""
    monkeypatch.setattr("predelinq.serving.batcher.BATCH_CHUNK", 7)
    client, data = server.client, server.data
    known = sorted(data.customers["customer_id"].to_list())[:150]
    unknown = [f"nobody-{k}" for k in range(10)]
    asked = [*unknown[:5], *reversed(known), *unknown[5:], known[0]]  # one id twice
    batch = client.post("/predict/batch", json={"customer_ids": asked, "as_of": AS_OF}).json()
    assert [p["customer_id"] for p in batch["predictions"]] == known
    assert batch["unknown_customer_ids"] == unknown
    for customer_id in known[::25]:
        single = client.post("/predict", json={"customer_id": customer_id, "as_of": AS_OF})
        score = next(p for p in batch["predictions"] if p["customer_id"] == customer_id)
        assert single.json()["risk_score"] == score["risk_score"]


# Process starts, as the interpreter reports them to audit hooks (PEP 578), in any thread of
# this process (the test's server runs in one). A hook cannot be removed: it is added once and
# records only while ``_WATCHING`` is set.
PROCESS_EVENTS = {
    "subprocess.Popen",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.exec",
    "os.spawn",
    "os.system",
}
_STARTED: list[str] = []
_WATCHING = threading.Event()
_HOOKED = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING.is_set() and event in PROCESS_EVENTS:
        _STARTED.append(event)


@contextmanager
def process_starts() -> Iterator[list[str]]:
    """The processes started in this process while the block runs (their audit events)."""
    if not _HOOKED.is_set():
        sys.addaudithook(_audit)
        _HOOKED.set()
    _STARTED.clear()
    _WATCHING.set()
    try:
        yield _STARTED
    finally:
        _WATCHING.clear()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_5000_id_batch_on_sqlite_starts_no_process(champion):
    """An HTTP request never starts a process: /predict/batch with 5,000 ids on SQLite reached
    the child-process read. Here every bulk read would be large (``large_read_customers``
    1: on SQLite, a child process), and the requests start none: the API reads over its
    pooled connection. The same ids read in bulk (the CLI's read) do start one, so the watch
    sees a process when there is one."""
    settings = champion.settings.model_copy(update={"large_read_customers": 1})
    known = champion.data.customers["customer_id"].to_list()
    ids = known + [f"U-{k:05d}" for k in range(5_000 - len(known))]
    with serve(create_app(settings)) as client, process_starts() as started:
        batch = client.post("/predict/batch", json={"customer_ids": ids, "as_of": AS_OF})
        single = client.post("/predict", json={"customer_id": known[0], "as_of": AS_OF})
        assert started == [], "a request started a process"
    assert batch.status_code == 200 and single.status_code == 200, batch.text + single.text
    assert len(batch.json()["predictions"]) == len(known)
    assert len(batch.json()["unknown_customer_ids"]) == 5_000 - len(known)

    observations = pl.DataFrame({"customer_id": ids}).with_columns(
        observation_date=pl.lit(date.fromisoformat(AS_OF))
    )
    with process_starts() as started:
        read = read_inputs(champion.engine, observations, settings)
    assert "subprocess.Popen" in started
    assert read["customers"].num_rows == len(known)


# --- item 19: limits, echoes, dates, headers, tokens ------------------------------------------


def test_a_body_over_the_limit_is_413_before_it_is_read(champion):
    settings = champion.settings
    settings = settings.model_copy(update={"max_body_bytes": 4096})
    with serve(create_app(settings)) as client:
        big = {"customer_ids": [f"C-{k:08d}" for k in range(1000)], "as_of": AS_OF}
        response = client.post("/predict/batch", json=big)
        assert response.status_code == 413
        assert "4,096 bytes" in response.json()["detail"]
        assert response.headers["x-content-type-options"] == "nosniff"

        def chunks():  # no Content-Length: the limit applies as the body streams in
            yield b'{"customer_ids": ["'
            for _ in range(100):
                yield b"x" * 100
            yield b'"]}'

        streamed = client.post(
            "/predict/batch", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        small = client.post("/predict", json={"customer_id": "nobody", "as_of": AS_OF})
        assert small.status_code == 404  # under the limit: served


def test_a_422_echoes_at_most_a_few_characters_of_the_input(server):
    client = server.client
    huge = "x" * 1_000_000
    response = client.post("/predict", json={"customer_id": huge, "as_of": AS_OF})
    assert response.status_code == 422
    assert len(response.content) < 1000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "customer_id"] and error["input"] == "x" * 60 + "..."
    missing = client.post("/predict", json={"other": huge, "as_of": AS_OF})
    assert missing.status_code == 422 and len(missing.content) < 1000
    many = client.post("/predict/batch", json={"customer_ids": [huge[:300]] * 2000})
    assert many.status_code == 422 and len(many.content) < 50_000


@pytest.mark.parametrize("as_of", ["0001-01-01", "1899-12-31", "3000-01-01", "9999-12-31"])
def test_an_as_of_outside_the_served_range_is_422(server, as_of):
    client, data = server.client, server.data
    customer_id = data.customers["customer_id"][0]
    single = client.post("/predict", json={"customer_id": customer_id, "as_of": as_of})
    batch = client.post("/predict/batch", json={"customer_ids": [customer_id], "as_of": as_of})
    assert (single.status_code, batch.status_code) == (422, 422)
    assert single.json()["detail"][0]["loc"] == ["body", "as_of"]


def test_a_misspelt_field_is_422_not_ignored(server):
    """``{"to_version": ...}`` for ``{"to": ...}`` rolled back to the previous champion."""
    client, data = server.client, server.data
    models = client.get("/models").json()
    champion = next(model["model_version"] for model in models if model["champion"])
    rollback = client.post("/models/rollback", json={"to_version": "nope"}, headers=ADMIN)
    assert rollback.status_code == 422 and rollback.json()["detail"][0]["loc"] == [
        "body",
        "to_version",
    ]
    customer_id = data.customers["customer_id"][0]
    predict = client.post("/predict", json={"customer_id": customer_id, "asof": "2024-01-01"})
    assert predict.status_code == 422
    assert [m for m in client.get("/models").json() if m["champion"]][0]["model_version"] == (
        champion
    )
    unknown = client.post("/models/rollback", json={"to": "nope"}, headers=ADMIN)
    assert unknown.status_code == 404


def test_a_lone_surrogate_in_an_id_is_422_with_a_valid_body(server):
    """The 422 echoed the id, which cannot be encoded as UTF-8: the server answered 500."""
    client = server.client
    for path, body in (
        ("/predict", '{"customer_id": "A\\ud800B"}'),
        ("/predict/batch", '{"customer_ids": ["ok", "A\\udc00"]}'),
    ):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert "\\ud800" in response.text or "\\udc00" in response.text  # escaped, as text
        json.loads(response.content.decode("utf-8"))


def test_every_response_says_nosniff_and_no_store(server):
    client, data = server.client, server.data
    customer_id = data.customers["customer_id"][0]
    responses = [
        client.get("/health"),
        client.get("/ready"),
        client.get("/openapi.json"),
        client.get("/docs"),
        client.post("/predict", json={"customer_id": customer_id, "as_of": AS_OF}),
        client.post("/predict", json={"customer_id": "nobody"}),  # 404
        client.post("/predict", json={}),  # 422
        client.post("/models/rollback"),  # 401
        client.get("/no-such-route"),  # 404
    ]
    assert [r.status_code for r in responses][4:] == [200, 404, 422, 401, 404]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["cache-control"] == "no-store", response.url


def test_with_a_read_token_metrics_schema_and_docs_need_it(champion):
    settings = champion.settings
    settings = settings.model_copy(update={"read_token": SecretStr(READ_TOKEN)})
    with serve(create_app(settings)) as client:
        for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 401, path
            wrong = client.get(path, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 403, path
            assert client.get(path, headers=READ).status_code == 200, path
            assert client.get(path, headers=ADMIN).status_code == 200, path
        assert "predelinq_request_seconds" in client.get("/metrics", headers=READ).text
        assert client.get("/openapi.json", headers=READ).json()["info"]["title"] == "predelinq"
        for path in ("/health", "/ready"):  # probes stay open
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("field", ["admin_token", "read_token"])
@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_create_app_refuses_an_empty_or_blank_token(tmp_path, field, token):
    tokens = {"admin_token": TOKEN, field: token}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", **tokens)
    variable = f"PREDELINQ_{field.upper()}"
    with pytest.raises(ConfigurationError, match=f"{variable} is empty or blank"):
        create_app(settings)


def _serve(database_url: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREDELINQ_")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("predelinq")), "serve", "--port", str(free_port())],
        env={**clean, "COLUMNS": "200", "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set PREDELINQ_ADMIN_TOKEN"),
        ({"PREDELINQ_ADMIN_TOKEN": "  "}, "PREDELINQ_ADMIN_TOKEN is empty or blank"),
    ],
)
def test_serve_refuses_a_missing_or_blank_token_in_one_line(tmp_path, env, message):
    result = _serve(f"sqlite:///{tmp_path / 'x.db'}", **env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
