"""One retrain at a time, across processes (and, on PostgreSQL, machines) sharing a database.

The lock dies with its holder, so a killed or stopped retrain never blocks the next one:

- PostgreSQL: a session advisory lock, held on a dedicated connection for the whole retrain;
  the server releases it when the holder's connection ends, however the process died.
- SQLite: an OS file lock (``flock``, through ``filelock``) on ``<database>.retraining.lock``
  beside the database file; the kernel releases it when the holder's process ends.

Neither expires while its holder lives: a retrain paused for an hour still holds it. Who
holds it, and since when, is recorded in ``retraining_lease`` for ``predelinq status``; that
row is only shown while the lock itself is held, so a dead holder's row is never reported.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from predelinq.clock import utc_now
from predelinq.db.locks import schema_lock_key
from predelinq.db.schema import retraining_lease
from predelinq.errors import PredelinqError

ADVISORY_LOCK_KEY = 0x70726574  # "pret": the retraining lock, with the schema as second key
LEASE_NAME = "retraining"
LOCK_FILE_SUFFIX = ".retraining.lock"


class RetrainingBusyError(PredelinqError):
    """Another retrain holds the lock."""


@dataclass(frozen=True)
class LockHolder:
    holder: str  # host:pid:nonce
    since: datetime  # UTC


def lock_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RetrainingLock:
    """The retraining lock, taken with ``acquire`` and given back with ``release``, which may
    be called from another thread (an API job takes it in the request, releases it when done).
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.holder = lock_holder()
        self._connection: Connection | None = None  # PostgreSQL: the session holding the lock
        self._file: FileLock | None = None  # SQLite

    def acquire(self) -> None:
        """Take the lock now or raise ``RetrainingBusyError`` naming who holds it."""
        if self.engine.dialect.name == "postgresql":
            self._acquire_advisory()
        else:
            self._acquire_file()
        try:
            _record_holder(self.engine, self.holder)
        except BaseException:
            self._give_back()
            raise

    def release(self) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    delete(retraining_lease).where(
                        retraining_lease.c.name == LEASE_NAME,
                        retraining_lease.c.holder == self.holder,
                    )
                )
        finally:
            self._give_back()

    def _acquire_advisory(self) -> None:
        connection = self.engine.connect()
        try:
            acquired = connection.execute(
                select(func.pg_try_advisory_lock(ADVISORY_LOCK_KEY, schema_lock_key()))
            ).scalar_one()
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not acquired:
            connection.close()
            raise RetrainingBusyError(_busy_message(self.engine))
        self._connection = connection

    def _acquire_file(self) -> None:
        lock = FileLock(
            lock_file_path(self.engine),
            timeout=0,
            thread_local=False,
            preserve_lock_file=True,
            fallback_to_soft=False,  # a marker file would outlive a killed holder
        )
        try:
            lock.acquire()
        except Timeout:
            raise RetrainingBusyError(_busy_message(self.engine)) from None
        self._file = lock

    def _give_back(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(
                    select(func.pg_advisory_unlock(ADVISORY_LOCK_KEY, schema_lock_key()))
                )
                connection.commit()
            finally:
                connection.close()
        if self._file is not None:
            lock, self._file = self._file, None
            lock.release()


@contextmanager
def retraining_lock(engine: Engine) -> Iterator[str]:
    """Hold the retraining lock for the ``with`` block, or raise ``RetrainingBusyError``."""
    lock = RetrainingLock(engine)
    lock.acquire()
    try:
        yield lock.holder
    finally:
        lock.release()


def lock_file_path(engine: Engine) -> Path:
    """``<database>.retraining.lock`` beside a SQLite database file."""
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("the retraining lock needs a SQLite database file, not :memory:")
    path = Path(database)
    return path.with_name(path.name + LOCK_FILE_SUFFIX)


def current_holder(engine: Engine) -> LockHolder | None:
    """Who holds the retraining lock and since when; None when nobody does."""
    with engine.connect() as connection:
        row = connection.execute(
            select(retraining_lease.c.holder, retraining_lease.c.acquired_at).where(
                retraining_lease.c.name == LEASE_NAME
            )
        ).one_or_none()
        if engine.dialect.name == "postgresql":
            held = _advisory_lock_held(connection)
        else:  # the row of a process that died holding the lock stays until the next retrain
            held = row is not None and _process_alive(row.holder)
    if not held:
        return None
    if row is None:  # taken a moment ago, not yet recorded
        return LockHolder("unknown", utc_now())
    return LockHolder(row.holder, row.acquired_at)


def _record_holder(engine: Engine, holder: str) -> None:
    """Replace any earlier (dead) holder's row with ours; we hold the lock."""
    with engine.begin() as connection:
        connection.execute(delete(retraining_lease).where(retraining_lease.c.name == LEASE_NAME))
        connection.execute(
            insert(retraining_lease).values(name=LEASE_NAME, holder=holder, acquired_at=utc_now())
        )


def _busy_message(engine: Engine) -> str:
    holder = current_holder(engine)
    if holder is None or holder.holder == "unknown":
        return "another retrain is running"
    since = f"{holder.since:%Y-%m-%d %H:%M:%S} UTC"
    return f"another retrain is running ({holder.holder}, since {since})"


def _advisory_lock_held(connection: Connection) -> bool:
    """Whether any session holds our advisory lock (pg_locks shows the two keys as classid
    and objid, the second as an unsigned oid)."""
    return bool(
        connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = CAST(:key AS oid) AND objsubid = 2"
                " AND objid = CAST(hashtext(current_schema())::bigint & 4294967295 AS oid))"
            ),
            {"key": ADVISORY_LOCK_KEY},
        ).scalar_one()
    )


def _process_alive(holder: str) -> bool:
    """Whether a ``host:pid:nonce`` holder's process still runs (on another host: assumed).
    Status reads this rather than probing the file lock, which could make a retrain starting
    at that moment fail as busy."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
