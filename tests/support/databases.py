"""Real databases for tests: a migrated SQLite file or PostgreSQL schema, and the PostgreSQL
schema a test owns (created empty, dropped afterwards, whatever the test did)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import Engine

# trust auth on the local server; CI points this elsewhere
POSTGRES_URL = os.environ.get(
    "PREDELINQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# The parameters of a fixture or test over both backends: the PostgreSQL half carries the
# ``postgres`` marker, so ``pytest -m "not postgres"`` runs the SQLite half only.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass(frozen=True)
class Database:
    """A migrated database and how a user names it."""

    backend: str  # "sqlite" or "postgres"
    url: str  # as a user writes it in DATABASE_URL
    engine: Engine


def postgres_unreachable_reason(url: str = POSTGRES_URL) -> str | None:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL at {url} unreachable: {str(error).strip()}"
    return None


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped when the block ends."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
