"""One retrain at a time, across processes and machines sharing the database.

PostgreSQL: a session advisory lock, held on a dedicated connection for the whole retrain
and released by the server if the process dies. SQLite: a lease row with an expiry, so a
crashed retrain blocks the next one for at most ``lock_lease_seconds``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import sqlite

from predelinq.db.schema import retraining_lease
from predelinq.registry import utc_now

ADVISORY_LOCK_KEY = 0x70726574  # "pret": the retraining lock, with the schema as second key
LEASE_NAME = "retraining"


class RetrainingBusyError(Exception):
    """Another retrain holds the lock."""


def lock_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def retraining_lock(engine: Engine, *, lease_seconds: int) -> Iterator[str]:
    """Hold the retraining lock for the ``with`` block, or raise ``RetrainingBusyError``."""
    holder = lock_holder()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            acquired = connection.execute(
                select(func.pg_try_advisory_lock(ADVISORY_LOCK_KEY, _schema_key()))
            ).scalar_one()
            connection.commit()
            if not acquired:
                raise RetrainingBusyError("another retrain is running (advisory lock held)")
            try:
                yield holder
            finally:
                connection.execute(
                    select(func.pg_advisory_unlock(ADVISORY_LOCK_KEY, _schema_key()))
                )
                connection.commit()
        return
    _take_lease(engine, holder, lease_seconds)
    try:
        yield holder
    finally:
        with engine.begin() as connection:
            connection.execute(
                delete(retraining_lease).where(
                    retraining_lease.c.name == LEASE_NAME, retraining_lease.c.holder == holder
                )
            )


def _schema_key() -> Any:
    """Deployments in other schemas of the same database do not block each other."""
    return func.hashtext(func.current_schema())


def _take_lease(engine: Engine, holder: str, lease_seconds: int) -> None:
    now = utc_now()
    statement = sqlite.insert(retraining_lease).values(
        name=LEASE_NAME, holder=holder, expires_at=now + timedelta(seconds=lease_seconds)
    )
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=retraining_lease.c.expires_at < now,
    )
    with engine.begin() as connection:
        connection.execute(statement)
        current = connection.execute(
            select(retraining_lease.c.holder, retraining_lease.c.expires_at).where(
                retraining_lease.c.name == LEASE_NAME
            )
        ).one()
    if current.holder != holder:
        until = f"{current.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        raise RetrainingBusyError(f"another retrain is running ({current.holder}, until {until})")
