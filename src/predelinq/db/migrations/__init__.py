"""Alembic migrations, run programmatically: ``predelinq init`` and on first use.

Commands started at once on a fresh database all try to migrate it; one at a time does, the
others wait and then find the schema up to date: a transaction-scoped advisory lock on
PostgreSQL, a file lock beside the database on SQLite.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, Engine

from predelinq.db.locks import schema_xact_lock

MIGRATIONS_PATH = Path(__file__).parent
MIGRATION_LOCK_KEY = 0x6D696772  # "migr", with the schema as second key
MIGRATION_LOCK_SUFFIX = ".migrate.lock"
MIGRATION_WAIT_SECONDS = 300


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, bound to a connection if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> bool:
    """Apply pending migrations; True if any ran. Idempotent and cheap when up to date."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(schema_xact_lock(MIGRATION_LOCK_KEY))
            return _upgrade(connection, head)
    database = engine.url.database
    if not database or database == ":memory:":  # nobody else can see it
        with engine.begin() as connection:
            return _upgrade(connection, head)
    lock_path = Path(database).with_name(Path(database).name + MIGRATION_LOCK_SUFFIX)
    lock = FileLock(
        lock_path, timeout=MIGRATION_WAIT_SECONDS, thread_local=False, fallback_to_soft=False
    )
    with lock, engine.begin() as connection:
        return _upgrade(connection, head)


def _upgrade(connection: Connection, head: str | None) -> bool:
    """Upgrade unless another process did while we waited for the lock."""
    if MigrationContext.configure(connection).get_current_revision() == head:
        return False
    command.upgrade(alembic_config(connection), "head")
    return True
