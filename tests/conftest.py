"""Shared fixtures: a fresh real database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use ``PREDELINQ_TEST_POSTGRES_URL`` (default: the local server's ``test``
database), each test in its own schema, dropped afterwards. Without a reachable server they
skip with the reason, unless ``PREDELINQ_REQUIRE_POSTGRES=1`` (set by CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.db import open_database

POSTGRES_URL = os.environ.get(
    "PREDELINQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class Database:
    backend: str
    url: str  # as a user writes it in DATABASE_URL
    engine: Engine


def _postgres_unreachable_reason() -> str | None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL at {POSTGRES_URL} unreachable: {str(error).strip()}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    reason = _postgres_unreachable_reason()
    if reason and os.environ.get("PREDELINQ_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (PREDELINQ_REQUIRE_POSTGRES=1)")
    if reason:
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped after the test."""
    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
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
