"""The API is built by a factory: importing ``predelinq.api`` builds nothing, the seed's
``uvicorn predelinq.api:app`` and ``uvicorn --factory predelinq.api:app_from_environment``
(what ``predelinq serve`` runs) both serve it from real uvicorn processes, with the JSON log
on stdout; errors become statuses through one table; ``/docs`` and ``/redoc`` need no
internet."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from predelinq.api import create_app
from predelinq.api.errors import STATUSES, status_of
from predelinq.errors import PredelinqError
from predelinq.modeling.artifacts import ArtifactError
from predelinq.modeling.registry import UnknownVersionError, current_champion, get_version
from predelinq.retraining.jobs import JobConflictError
from predelinq.retraining.run import retrain
from support.factories import version_of
from support.http import ADMIN, TOKEN, free_port, serve
from support.synthetic import Loaded

START_SECONDS = 90


def _environment(**extra: str) -> dict[str, str]:
    """This environment without predelinq's settings, plus ``extra``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREDELINQ_") and key != "DATABASE_URL"
    }
    return {**inherited, **extra}


def test_importing_the_api_builds_nothing(tmp_path):
    """With settings that cannot even be read (an unknown scheme, no admin token), importing
    the package works and builds no app; asking for ``app`` builds it, and so fails."""
    probe = """
import predelinq.api as api
print(sorted(name for name in vars(api) if name == "app"))
try:
    api.app
except Exception as error:
    print(type(error).__name__)
"""
    env = _environment(DATABASE_URL="mysql://nobody@nowhere/db")
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "ValidationError"]
    assert not list(tmp_path.iterdir())  # no database, no directory


@pytest.mark.parametrize(
    "target",
    [["predelinq.api:app"], ["--factory", "predelinq.api:app_from_environment"]],
    ids=["seed-command", "factory"],
)
def test_uvicorn_serves_the_app_and_its_json_log(champion: Loaded, tmp_path, target):
    port = free_port()
    env = _environment(
        DATABASE_URL=champion.database.url,
        PREDELINQ_MODEL_DIR=str(champion.settings.model_dir),
        PREDELINQ_ADMIN_TOKEN=TOKEN,
        PREDELINQ_THREADS="1",
    )
    command = [sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--log-level", "warning", "--no-access-log"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            ready = _ready(client, server)
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=60)

    with champion.engine.connect() as connection:
        assert ready["model_version"] == current_champion(connection), stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    # from predelinq.serving.champion and predelinq.api.telemetry: one handler, on "predelinq"
    loaded = [line for line in lines if line["event"] == "model loaded"]
    assert [line["model_version"] for line in loaded] == [ready["model_version"]]
    assert any(line["event"] == "request" and line["route"] == "/ready" for line in lines)


def _ready(client: httpx.Client, server: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped during start-up"
        try:
            response = client.get("/ready")
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server was not ready within {START_SECONDS} s")


# --- errors -> statuses ----------------------------------------------------------------------


def test_the_error_table_maps_the_most_specific_class_first():
    assert status_of(UnknownVersionError("no version x")) == 404
    assert status_of(ArtifactError("x", "its sha256 differs")) == 500
    assert status_of(JobConflictError("job-1")) == 409
    assert status_of(PredelinqError("anything else")) == 500
    kinds = [kind for kind, _ in STATUSES]
    for position, kind in enumerate(kinds):  # no class is shadowed by a base listed before it
        assert not any(issubclass(kind, base) for base in kinds[:position]), kind


def test_a_corrupt_artifact_is_a_500_naming_the_version_and_the_champion_stays(champion):
    engine, settings = champion.engine, champion.settings
    first = version_of(retrain(engine, settings, reason="first", force=True))
    second = version_of(retrain(engine, settings, reason="second", force=True))
    with engine.connect() as connection:
        artifact = settings.model_dir / get_version(connection, first).artifact_path
    artifact.write_bytes(b"not a model")

    with serve(create_app(settings)) as client:
        promote = client.post(f"/models/{first}/promote", headers=ADMIN)
        unknown = client.post("/models/no-such-version/promote", headers=ADMIN)
        models = client.get("/models").json()

    assert promote.status_code == 500, promote.text
    assert first in promote.json()["detail"]
    assert unknown.status_code == 404 and "no-such-version" in unknown.json()["detail"]
    assert [m["model_version"] for m in models if m["champion"]] == [second]


# --- docs without internet -------------------------------------------------------------------

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_server(server, page):
    client = server.client
    html = client.get(page)
    assert html.status_code == 200
    assert "http://" not in html.text and "https://" not in html.text, html.text
    urls = {a or b for a, b in URL.findall(html.text)}
    spec = re.search(r"""spec-url=["']([^"']+)""", html.text)
    urls |= {spec.group(1)} if spec else set()
    assert "/openapi.json" in urls and len(urls) >= 3, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000, url  # a real script, style sheet or schema


def test_the_docs_assets_come_from_an_installed_package():
    from importlib.resources import files

    from predelinq.api.docs import ASSETS_PACKAGE

    package, folder = ASSETS_PACKAGE
    shipped = {path.name for path in Path(str(files(package) / folder)).iterdir()}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"} <= shipped
