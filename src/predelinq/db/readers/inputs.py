"""The bulk read behind ``compute_features`` and the CLI's scoring and export: one query per
table, for the selected customers, each customer's events limited to those before its
latest observation date.

The selected customers are written to a temporary table and joined, never spelled out in an
IN list. The strategy is chosen by the settings, by the number of customers:

- PostgreSQL: read through ADBC (Arrow Database Connectivity) straight into Arrow, which
  measured several times faster than DB-API row fetching; from ``large_read_customers`` on,
  over ``read_connections`` connections at once that share one snapshot.
- SQLite, fewer than ``large_read_customers``: the standard library's sqlite3, here.
- SQLite, from ``large_read_customers`` on: ADBC in a short-lived child process
  (``sqlite_child.py``) over ``read_connections`` connections. The API never reads this
  way (``at_date.py``): an HTTP request never starts a process.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import polars as pl
import pyarrow as pa
from sqlalchemy import Engine, text

import predelinq.db.readers.sqlite_child as sqlite_child
from predelinq.config import Settings
from predelinq.db.readers.arrow import concat_parts, fetch_arrow
from predelinq.db.readers.columns import CUSTOMERS, PAYMENTS, SCHEMAS, TRANSACTIONS, select_list

SELECTION_TABLE = "predelinq_feature_selection"
QUERIES = {
    CUSTOMERS: f"""
        SELECT {select_list(CUSTOMERS, "c")}
        FROM customers c JOIN {SELECTION_TABLE} s ON s.customer_id = c.customer_id""",
    TRANSACTIONS: f"""
        SELECT {select_list(TRANSACTIONS, "t")}
        FROM transactions t JOIN {SELECTION_TABLE} s ON s.customer_id = t.customer_id
        WHERE t.txn_time < s.max_t""",
    PAYMENTS: f"""
        SELECT {select_list(PAYMENTS, "p")}
        FROM payments p JOIN {SELECTION_TABLE} s ON s.customer_id = p.customer_id
        WHERE p.due_date < s.max_t""",
}


def read_inputs(
    engine: Engine, observations: pl.DataFrame, settings: Settings, *, snapshot: str | None = None
) -> dict[str, pa.Table]:
    """The observed customers' rows of customers, transactions and payments, as Arrow.

    From ``settings.large_read_customers`` customers on, the customers are split into
    ``settings.read_connections`` groups read at the same time over as many connections
    (decoding rows is CPU-bound in the database client); on PostgreSQL all connections share
    one snapshot, on SQLite each customer's rows come from one snapshot. Fewer customers are
    read over one connection: a second one costs more than it saves on a small read.

    ``snapshot`` (PostgreSQL): read the snapshot another transaction exported (see
    ``exported_snapshot``), so that reads in several processes see the same data.
    """
    selection = (
        observations.group_by("customer_id").agg(max_t=pl.col("observation_date").max()).to_arrow()
    )
    large = selection.num_rows >= settings.large_read_customers
    parts = settings.read_connections if large else 1
    if engine.dialect.name == "sqlite":
        path = engine.url.database or ""
        if not large:
            return _read_sqlite(path, selection)
        return sqlite_child.read(
            path, selection, QUERIES, SQLITE_SCHEMAS, table=SELECTION_TABLE, parts=parts
        )
    groups = sqlite_child.split(selection, parts)
    with ExitStack() as stack:
        connections = [stack.enter_context(_connect(engine)) for _ in groups]
        _share_snapshot(connections, snapshot)
        return _read_in_parallel(connections, groups)


def _read_in_parallel(connections: list[Any], groups: list[pa.Table]) -> dict[str, pa.Table]:
    """Each group over its own connection, in threads (ADBC fetches release the GIL)."""
    with ThreadPoolExecutor(len(groups)) as pool:
        return concat_parts(list(pool.map(_read_group, connections, groups)))


# SQLite is never read through ADBC in this process: ADBC's driver carries its own copy of the
# SQLite library, and two copies in one process break SQLite's POSIX file locks (after a
# feature read, new connections failed with "disk I/O error"; the SQLite authors warn this
# can corrupt a database). Small reads use the standard library's sqlite3; large ones run
# ADBC in a child process (its own SQLite, like any other process; ``sqlite_child.py``) and
# hand back Arrow IPC files: 15M rows took 45 s through sqlite3 rows and 7 s this way.
SQLITE_SCHEMAS = SCHEMAS["sqlite"]


def _read_sqlite(path: str, selection: pa.Table) -> dict[str, pa.Table]:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute(f"CREATE TEMP TABLE {SELECTION_TABLE} (customer_id TEXT, max_t TEXT)")
        ids = selection.column("customer_id").to_pylist()
        dates = [str(day) for day in selection.column("max_t").to_pylist()]
        connection.executemany(
            f"INSERT INTO {SELECTION_TABLE} VALUES (?, ?)", zip(ids, dates, strict=True)
        )
        return {
            name: fetch_arrow(connection.execute(query), SQLITE_SCHEMAS[name])
            for name, query in QUERIES.items()
        }
    finally:
        connection.close()


def _read_group(connection: Any, selection: pa.Table) -> dict[str, pa.Table]:
    cursor = connection.cursor()
    cursor.adbc_ingest(SELECTION_TABLE, selection, mode="create", temporary=True)
    tables = {}
    for name, query in QUERIES.items():
        cursor.execute(query)
        tables[name] = cursor.fetch_arrow_table()
    cursor.execute(f"DROP TABLE {SELECTION_TABLE}")
    return tables


def _share_snapshot(connections: list[Any], snapshot: str | None = None) -> None:
    """PostgreSQL: every connection reads ``snapshot``, by default the first one's."""
    if snapshot is None:
        if len(connections) < 2:
            return
        cursor = connections[0].cursor()
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot, connections = cursor.fetchone()[0], connections[1:]
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    for connection in connections:
        # SET TRANSACTION takes no bind parameters; the id is checked above.
        connection.cursor().execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")


@contextmanager
def exported_snapshot(engine: Engine) -> Iterator[str]:
    """PostgreSQL: a repeatable-read transaction's snapshot id, valid while the block runs
    (the transaction stays open, reading and writing nothing)."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield str(connection.execute(text("SELECT pg_export_snapshot()")).scalar_one())


# By default the driver reads all of pg_attribute and pg_type over a connection of its own
# before each connection: 60 ms of a 200-customer read, against 19 ms with its built-in table
# of PostgreSQL's own types, which are the only types these reads and the selection use.
BUILTIN_TYPES = {"adbc.postgresql.type_resolver_mode": "builtin"}


def libpq_uri(engine: Engine) -> str:
    """The engine's URL as libpq (and so ADBC's driver) takes it: SQLAlchemy's driver name
    (``postgresql+psycopg``) dropped, the password kept (escaped as a URI needs)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _connect(engine: Engine) -> Iterator[Any]:
    """An ADBC connection in a read transaction (PostgreSQL: repeatable read, one snapshot
    for all three queries); rolled back at the end, nothing is written."""
    import adbc_driver_postgresql.dbapi as postgresql_adbc

    uri = libpq_uri(engine)
    try:
        connection = postgresql_adbc.connect(uri, db_kwargs=BUILTIN_TYPES)
    except postgresql_adbc.NotSupportedError:  # an older driver, without the option
        connection = postgresql_adbc.connect(uri)
    with connection:
        cursor = connection.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield connection
        connection.rollback()
