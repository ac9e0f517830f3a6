"""Shared fixtures: a fresh real database per test, on SQLite and on PostgreSQL, and the
standard synthetic lender (written once per session, ingested per test, with a first model
where a test needs one).

PostgreSQL tests use ``PREDELINQ_TEST_POSTGRES_URL`` (default: the local server's ``test``
database), each test in its own schema, dropped afterwards. Without a reachable server they
skip with the reason, unless ``PREDELINQ_REQUIRE_POSTGRES=1`` (set by CI), where they fail.
Every test that reaches PostgreSQL carries the ``postgres`` marker, so ``-m "not postgres"``
runs the SQLite half only: a backend parameter carries it
(``pytest.param("postgres", marks=pytest.mark.postgres)``, checked at collection), and a test
asking for ``postgres_url`` or ``postgres_schema_url`` gets it here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.retraining.run import retrain
from support.databases import (
    BACKENDS,
    POSTGRES_URL,
    Database,
    postgres_schema,
    postgres_unreachable_reason,
)
from support.http import TOKEN
from support.synthetic import Loaded, Synthetic, load_synthetic, write_synthetic


def _chooses_postgres(value: object) -> bool:
    """A parameter value that picks PostgreSQL: "postgres", or a tuple holding it."""
    values = value if isinstance(value, tuple) else (value,)
    return any(isinstance(v, str) and v == "postgres" for v in values)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marked = item.get_closest_marker("postgres") is not None
        if {"postgres_url", "postgres_schema_url"} & set(getattr(item, "fixturenames", ())):
            if not marked:
                item.add_marker(pytest.mark.postgres)
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(_chooses_postgres(value) for value in params.values()) and not marked:
            raise pytest.UsageError(
                f"{item.nodeid} runs on PostgreSQL without the postgres marker: parametrise it "
                'with pytest.param("postgres", marks=pytest.mark.postgres)'
            )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    reason = postgres_unreachable_reason()
    if reason and os.environ.get("PREDELINQ_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (PREDELINQ_REQUIRE_POSTGRES=1)")
    if reason:
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped after the test."""
    with postgres_schema(postgres_url) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend; DATABASE_URL points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'predelinq.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    engine = open_database(Settings(database_url=url))
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("DATABASE_URL", url)
    yield Database(request.param, url, engine)
    engine.dispose()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """The standard lender (support.synthetic: 160 customers), written as Parquet once."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def loaded(
    database: Database, synthetic: Synthetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Loaded:
    """The database with the standard lender. The settings (and the environment, for the
    command line) keep models under the test's directory and train on two threads and
    every customer; the settings serve with the tests' admin token."""
    model_dir = tmp_path / "models"
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("PREDELINQ_THREADS", "2")
    return load_synthetic(
        database,
        synthetic,
        model_dir=model_dir,
        threads=2,
        max_customers="all",
        admin_token=TOKEN,
        reload_seconds=0.2,
    )


@pytest.fixture
def champion(loaded: Loaded) -> Loaded:
    """``loaded`` with a first model, the champion; settings on one thread, as the API tests
    serve (the two cores are shared with the server and its clients)."""
    settings = loaded.settings.model_copy(update={"threads": 1})
    assert retrain(loaded.engine, settings, reason="first model").promoted
    return replace(loaded, settings=settings)
