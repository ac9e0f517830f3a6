"""Engine creation: SQLite (embedded default) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from predelinq.config import Settings

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-524288",  # up to 512 MiB of page cache: bulk index maintenance
)


def create_db_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for a SQLAlchemy URL, with our SQLite pragmas and transaction handling.

    ``pool_size`` connections stay open; the API sets it to its request concurrency, since a
    connection made per request (and for SQLite, its cold page cache) cost more than the
    request's own queries."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=pool_size)
    _use_sqlite_transactions(engine)
    return engine


def _use_sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.

    The sqlite3 module's legacy mode opens a transaction only before DML, so DDL and
    reads before the first write would run outside it. This is SQLAlchemy's documented
    recipe for real SQLite transactions.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def open_database(
    settings: Settings | None = None, *, migrate: bool = True, pool_size: int = 5
) -> Engine:
    """The engine for the configured database, its schema brought up to date first."""
    from predelinq.db.migrations import upgrade_to_head

    settings = settings or Settings()
    engine = create_db_engine(settings.sqlalchemy_url, pool_size=pool_size)
    if migrate:
        upgrade_to_head(engine)
    return engine
