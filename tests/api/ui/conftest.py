"""The dashboard's fixtures: headless Chromium (one for the session), a fresh watched page per
test (its own context: no cookies carried over), and ``dashboard``: a served database worth
looking at, built once for the package.

The dashboard's database is the standard lender (160 customers) on SQLite with four runs:
the first model (on 100 customers, promoted), a retrain on every customer (the gate compares
it with the champion on the 60 new customers), a third (rejected: no customer is new, so the
gate has no evidence) and a forced one (promoted anyway), and
scores logged through the live server: batches of every customer at three dates and one
customer at seven month-starts (the Customer page's score history). It takes about 15 s to
build; the page tests share it and never change it (the admin tests, which do, serve their
own: ``server`` in tests/api/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from predelinq.api import create_app
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.db.schema import predictions
from predelinq.retraining.result import RetrainResult
from predelinq.retraining.run import retrain
from predelinq.statuses import RunStatus
from support.browser import Dashboard, WatchedPage, chromium, wait_until_cached, watched_page
from support.databases import Database
from support.http import ADMIN, TOKEN, serve
from support.synthetic import Loaded, Synthetic, load_synthetic

BATCH_DATES = ("2024-08-01", "2024-10-01", "2024-12-01")
# The first model learns from 100 of the 160 customers, so that the second retrain's holdout
# (the 60 it adds: about 360 rows, 58 positives) is large enough for the gate to compare.
FIRST_CUSTOMERS = 100
CUSTOMER_DATES = tuple(f"2024-{month:02d}-01" for month in range(6, 13))
# The cached aggregates behind the pages (drift history, the monitoring report) are computed
# in a background thread on first use; on two shared cores that took up to a minute.
CACHE_SECONDS = 180
LOG_SECONDS = 30
READ_TOKEN = "test-dashboard-read-token"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # a module's, closed after it: Playwright's sync API runs an event loop on the main
    # thread while it is open, and later tests' asyncio.run() failed under it
    # (tests/serving/test_batcher.py; "package" scope is the session's here, no __init__)
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[WatchedPage]:
    with watched_page(browser) as watched:
        yield watched


def _logged(engine: Engine) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(select(func.count()).select_from(predictions)).scalar_one()
        return count


def _log_scores(client: httpx.Client, engine: Engine, customers: list[str], one: str) -> None:
    """Scores through the live server, as a lender's systems would ask for them; wait until
    the prediction log's writer has stored every one."""
    for as_of in BATCH_DATES:
        answer = client.post(
            "/predict/batch", json={"customer_ids": customers, "as_of": as_of}, headers=ADMIN
        )
        assert answer.status_code == 200, answer.text
    for as_of in CUSTOMER_DATES:
        answer = client.post("/predict", json={"customer_id": one, "as_of": as_of}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
    expected = len(BATCH_DATES) * len(customers) + len(CUSTOMER_DATES)
    deadline = time.monotonic() + LOG_SECONDS
    while _logged(engine) < expected:
        assert time.monotonic() < deadline, f"{expected} logged scores never landed"
        time.sleep(0.1)


@dataclass(frozen=True)
class DashboardData:
    """The dashboard's database, before it is served, and the retrains that made it."""

    loaded: Loaded
    runs: tuple[RetrainResult, ...]


@pytest.fixture(scope="package")
def dashboard_data(
    tmp_path_factory: pytest.TempPathFactory, synthetic: Synthetic
) -> Iterator[DashboardData]:
    """The dashboard's database: the lender and its four retrains (see the module's doc)."""
    directory = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{directory / 'predelinq.db'}"
    database = Database("sqlite", url, open_database(Settings(database_url=url)))
    loaded = load_synthetic(
        database,
        synthetic,
        model_dir=directory / "models",
        threads=1,  # the two cores are shared with the server and the browser
        max_customers="all",
        admin_token=TOKEN,
        reload_seconds=0.2,
    )
    engine, settings = loaded.engine, loaded.settings
    runs = (
        retrain(engine, settings, reason="first model", seed=1, max_customers=FIRST_CUSTOMERS),
        retrain(engine, settings, reason="every customer", seed=2),
        retrain(engine, settings, reason="nothing new to learn", seed=3),
        retrain(engine, settings, reason="forced by an operator", seed=4, force=True),
    )
    statuses = [run.status for run in runs]
    assert statuses[0] == statuses[3] == RunStatus.SUCCESS, statuses
    assert statuses[2] == RunStatus.REJECTED, statuses
    assert "delta_auc" in runs[1].gate_evidence, runs[1].gate  # the gate chart has a point
    yield DashboardData(loaded, runs)
    engine.dispose()


@pytest.fixture(scope="package")
def dashboard(dashboard_data: DashboardData) -> Iterator[Dashboard]:
    """The dashboard's database served by a real uvicorn server, with scores logged through
    it and every page's cached aggregates computed."""
    loaded = dashboard_data.loaded
    customers = loaded.data.customers["customer_id"].sort().to_list()
    one = loaded.data.labels["customer_id"].sort().to_list()[0]
    with serve(create_app(loaded.settings)) as client:
        _log_scores(client, loaded.engine, customers, one)
        wait_until_cached(client, CACHE_SECONDS)
        yield Dashboard(client, loaded, dashboard_data.runs, one, CUSTOMER_DATES)


@pytest.fixture(scope="package")
def guarded(dashboard: Dashboard) -> Iterator[Dashboard]:
    """The dashboard's database (scores logged) served by a second server with a read token
    (``READ_TOKEN``): pages need a session. Its cached aggregates are computed (through a
    logged-in client) before a test opens a page, so that no computation outlives the server."""
    loaded = dashboard.loaded
    settings = loaded.settings.model_copy(update={"read_token": SecretStr(READ_TOKEN)})
    served = Loaded(loaded.database, loaded.synthetic, settings)
    with serve(create_app(settings)) as client:
        with httpx.Client(base_url=client.base_url, timeout=client.timeout) as session:
            assert session.post("/ui/login", data={"token": READ_TOKEN}).status_code == 303
            wait_until_cached(session, CACHE_SECONDS)
        yield Dashboard(client, served, dashboard.runs, dashboard.customer_id, ())
