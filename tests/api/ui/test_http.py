"""The dashboard over plain HTTP (a real uvicorn server, no browser): headers every page
carries, the offline assets, the read session's cookie, the admin token on the forms, and
pages on a database with nothing in it. What a browser draws is tested in test_pages.py."""

from __future__ import annotations

import re
import time
from importlib.resources import files
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from predelinq.api import create_app
from predelinq.api.ui import charts
from predelinq.api.ui.auth import COOKIE, session_value
from predelinq.config import Settings
from predelinq.db.schema import champion_changes, retrain_jobs
from predelinq.modeling.registry import current_champion
from predelinq.retraining.run import retrain
from support.browser import PAGES
from support.databases import Database
from support.http import TOKEN, Served, serve
from support.synthetic import Loaded

READY_SECONDS = 180


def _wait_ready(client: httpx.Client, path: str = "/ui/drift") -> httpx.Response:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        response = client.get(path)
        if response.headers["x-dashboard-cache"] == "ready" or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_every_page_times_itself_and_keeps_to_what_the_server_sends(server: Served) -> None:
    for path in PAGES:
        response = server.client.get(path)
        assert response.status_code == 200, path
        assert re.fullmatch(r"app;dur=\d+\.\d", response.headers["server-timing"]), path
        assert response.headers["x-dashboard-cache"] in {"ready", "computing"}
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "http" not in response.text.split("<main", 1)[0], "no asset from elsewhere"
    assert _wait_ready(server.client).headers["x-dashboard-cache"] == "ready"
    # the JSON API keeps its own headers: no page policy on it
    assert "content-security-policy" not in server.client.get("/health").headers


def test_plotly_is_served_from_the_installed_package_and_cached(server: Served) -> None:
    response = server.client.get("/ui/static/plotly.min.js")
    assert response.status_code == 200
    shipped = (files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    assert response.content == shipped
    assert b"Licensed under the MIT license" in shipped[:2000]  # its licence travels with it
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert server.client.get("/ui/static/..%2Fauth.py").status_code == 404
    assert server.client.get("/ui/static/nothing.js").status_code == 404


def test_a_read_session_holds_no_token_and_opens_only_the_pages(champion: Loaded) -> None:
    read = "a-read-token-for-the-dashboard"
    settings = champion.settings.model_copy(update={"read_token": SecretStr(read)})
    with serve(create_app(settings)) as client:
        first = client.get("/ui", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/ui/login"
        wrong = client.post("/ui/login", data={"token": "guess"}, follow_redirects=False)
        assert wrong.status_code == 403 and "token refused" in wrong.text
        assert COOKIE not in wrong.cookies
        right = client.post("/ui/login", data={"token": read}, follow_redirects=False)
        assert right.status_code == 303 and right.headers["location"] == "/ui"
        cookie = right.headers["set-cookie"]
        assert read not in cookie and read not in right.headers.get("location", "")
        assert f"{COOKIE}={session_value(SecretStr(read))}" in cookie
        for attribute in ("HttpOnly", "Path=/ui", "SameSite=strict"):
            assert attribute.lower() in cookie.lower()
        assert client.get("/ui/models").status_code == 200  # the client keeps the cookie
        # the page session is not a bearer token: the JSON reads still ask for one
        assert client.get("/monitoring").status_code == 401
        client.cookies.set(COOKIE, "0" * 64, path="/ui")
        assert client.get("/ui", follow_redirects=False).status_code == 303


def test_the_admin_forms_refuse_a_wrong_token_and_change_nothing(server: Served) -> None:
    engine = server.loaded.engine

    def counts() -> tuple[int, int]:
        with engine.connect() as connection:
            jobs = connection.execute(select(func.count()).select_from(retrain_jobs)).scalar_one()
            moves = connection.execute(
                select(func.count()).select_from(champion_changes)
            ).scalar_one()
        return jobs, moves

    before = counts()
    for action, form in (
        ("trigger", {"reason": "x"}),
        ("promote", {"version": "anything"}),
        ("rollback", {}),
    ):
        for token in ("wrong", ""):
            response = server.client.post(f"/ui/admin/{action}", data={**form, "token": token})
            assert response.status_code == 403, (action, token)
            assert "token refused" in response.text
            assert TOKEN not in response.text
    assert counts() == before


def test_promote_and_rollback_through_the_forms_record_the_dashboard(champion: Loaded) -> None:
    engine = champion.engine
    settings = champion.settings
    first = current_champion_of(champion)
    assert retrain(engine, settings, reason="second", force=True).promoted
    second = current_champion_of(champion)
    with serve(create_app(settings)) as client:
        confirm = client.get("/ui/admin/confirm", params={"action": "rollback"})
        assert confirm.status_code == 200 and 'name="token"' in confirm.text
        done = client.post("/ui/admin/rollback", data={"token": TOKEN}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/ui/models"
        assert current_champion_of(champion) == first
        done = client.post(
            "/ui/admin/promote", data={"token": TOKEN, "version": second}, follow_redirects=False
        )
        assert done.status_code == 303
        assert current_champion_of(champion) == second
        unknown = client.post("/ui/admin/promote", data={"token": TOKEN, "version": "nope"})
        assert unknown.status_code == 404 and "nope" in unknown.text
        models = client.get("/ui/models").text
    with engine.connect() as connection:
        actors = connection.execute(
            select(champion_changes.c.actor).order_by(champion_changes.c.change_id)
        ).scalars()
        assert list(actors)[-2:] == ["dashboard", "dashboard"]
    assert models.count("dashboard") >= 2  # the lineage shows who moved it


def current_champion_of(loaded: Loaded) -> str | None:
    with loaded.engine.connect() as connection:
        return current_champion(connection)


def test_every_page_answers_on_an_empty_database(database: Database, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database.url, model_dir=tmp_path / "models", admin_token=SecretStr(TOKEN)
    )
    _every_page_says_no_model(settings)


def test_every_page_answers_before_the_first_model(loaded: Loaded) -> None:
    _every_page_says_no_model(loaded.settings)


def _every_page_says_no_model(settings: Settings) -> None:
    with serve(create_app(settings)) as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["x-dashboard-cache"] == "ready", path
        assert "none yet" in client.get("/ui").text
        missing = client.get("/ui/customers", params={"customer_id": "nobody"})
        assert missing.status_code == 404 and "No customer nobody" in missing.text
        # PostgreSQL refuses NUL in text; the page must still answer "no such customer"
        nul = client.get("/ui/customers", params={"customer_id": "a\x00b"})
        assert nul.status_code == 404 and "No customer a" in nul.text
        unknown = client.get("/ui/models", params={"version": "nope"})
        assert unknown.status_code == 404 and "No version nope" in unknown.text


def test_bin_labels_name_every_bin_of_the_reference() -> None:
    assert charts.bin_labels([]) == ["all"]
    labels = charts.bin_labels([0.1, 0.25])
    assert labels == ["< 0.100", "0.100–0.250", ">= 0.250"]
    figure = charts.score_histogram([0.1, 0.25], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3])
    assert [trace["y"] for trace in figure["data"]] == [[0.3, 0.4, 0.3], [0.2, 0.5, 0.3]]
