"""Engine creation: SQLite (embedded default) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from predelinq.config import Settings
from predelinq.errors import PredelinqError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-524288",  # up to 512 MiB of page cache: bulk index maintenance
)
BEGIN_IMMEDIATE = "predelinq_begin_immediate"  # execution option, see _use_sqlite_transactions


def create_db_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for a SQLAlchemy URL, with our SQLite pragmas and transaction handling.

    ``pool_size`` connections stay open; the API sets it to its request concurrency, since a
    connection made per request (and for SQLite, its cold page cache) cost more than the
    request's own queries."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size)
    engine = create_engine(url, pool_size=pool_size)
    _use_sqlite_transactions(engine)
    return engine


def _use_sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.

    The sqlite3 module's legacy mode opens a transaction only before DML, so DDL and
    reads before the first write would run outside it. This is SQLAlchemy's documented
    recipe for real SQLite transactions. A connection with the execution option
    ``BEGIN_IMMEDIATE`` takes the write lock as its transaction begins (``BEGIN IMMEDIATE``):
    a read-then-write transaction, such as a champion move, then cannot interleave with
    another writer.
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
        immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_database(settings: Settings, *, migrate: bool = True, pool_size: int = 5) -> Engine:
    """The engine for the configured database, its schema brought up to date first."""
    from predelinq.db.migrations import upgrade_to_head

    _sqlite_directory(settings.database_url)
    engine = create_db_engine(settings.sqlalchemy_url, pool_size=pool_size)
    if migrate:
        upgrade_to_head(engine)
    return engine


class DatabaseLocationError(PredelinqError, SQLAlchemyError):
    """A SQLite database whose directory does not exist: most likely a typo in DATABASE_URL."""


def _sqlite_directory(database_url: str) -> None:
    """Create the default database's directory (``data/``) on first use; for any other
    SQLite URL the directory must exist: a mistyped path would otherwise become a new,
    empty database that reports "nothing to do" forever."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent
    if directory.is_dir():
        return
    if database_url == Settings.model_fields["database_url"].default:
        directory.mkdir(parents=True, exist_ok=True)
        return
    raise DatabaseLocationError(
        f"the directory {directory} of the SQLite database does not exist; "
        "check DATABASE_URL, or create the directory first"
    )
