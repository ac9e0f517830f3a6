"""The live-server fixtures of the API tests: synthetic data, and a real uvicorn server on
loopback serving it with a champion."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from predelinq.api import create_app
from predelinq.config import Settings
from predelinq.ingest import ingest_files
from predelinq.retraining.run import retrain
from predelinq.synth import generate, write
from support.http import TOKEN, free_port


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    data = generate(n_customers=160, seed=41)
    return data, write(data, tmp_path_factory.mktemp("synth"), file_format="parquet")


@pytest.fixture
def server(database, synthetic, tmp_path):
    """A real uvicorn server on loopback serving a database with data and a champion."""
    data, files = synthetic
    ingest_files(database.engine, files)
    settings = Settings(
        database_url=database.url,
        model_dir=tmp_path / "models",
        threads=1,
        admin_token=TOKEN,
        reload_seconds=0.2,
        max_customers="all",
    )
    retrain(database.engine, settings, reason="first model")
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        yield client, data, settings
    uvicorn_server.should_exit = True
    thread.join(timeout=30)
