"""What the HTTP tests share: the admin token they serve with, a free loopback port, and a
real uvicorn server on loopback (in a thread of the test process) with a client for it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from predelinq.config import Settings
from predelinq.synth import SyntheticData
from support.synthetic import Loaded

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(
    app: FastAPI, *, timeout: float = 120, log_level: str = "warning"
) -> Iterator[httpx.Client]:
    """``app`` under a real uvicorn server on a free loopback port; a client with its base URL.
    The server stops when the block ends, whatever happened in it."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level=log_level)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            assert thread.is_alive(), "the server stopped during start-up"
            assert time.monotonic() < deadline, f"uvicorn did not start in {START_SECONDS} s"
            time.sleep(0.05)
        base_url = f"http://127.0.0.1:{server.config.port}"
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Served:
    """A live server's client, and the database, data and settings it serves."""

    client: httpx.Client
    loaded: Loaded

    @property
    def data(self) -> SyntheticData:
        return self.loaded.data

    @property
    def settings(self) -> Settings:
        return self.loaded.settings
