"""The bulk read behind ``compute_features``: one query per table, for the selected customers.

PostgreSQL is read through ADBC (Arrow Database Connectivity) straight into Arrow, which
measured several times faster than DB-API row fetching; SQLite through sqlite3 (see below).
The selected customers are written to a temporary table and joined, never spelled out in
an IN list; each customer's events are limited to those before its latest observation date.
"""

from __future__ import annotations

import gc
import re
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from typing import Any

import polars as pl
import pyarrow as pa
from sqlalchemy import BindParameter, Connection, Date, DateTime, bindparam, text
from sqlalchemy.engine import make_url

import predelinq.db.readers.sqlite_child as sqlite_child

SELECTION_TABLE = "predelinq_feature_selection"
READ_CONNECTIONS = 2  # parallel readers; this machine has two cores
PARALLEL_READ_MIN_CUSTOMERS = 5_000
QUERIES = {
    "customers": f"""
        SELECT c.customer_id, c.created_at, c.monthly_income, c.salary_day, c.credit_limit
        FROM customers c JOIN {SELECTION_TABLE} s ON s.customer_id = c.customer_id""",
    "transactions": f"""
        SELECT t.customer_id, t.txn_id, t.txn_time, t.amount, t.txn_type, t.category,
               t.merchant_id, t.channel, t.balance_after
        FROM transactions t JOIN {SELECTION_TABLE} s ON s.customer_id = t.customer_id
        WHERE t.txn_time < s.max_t""",
    "payments": f"""
        SELECT p.customer_id, p.due_date, p.amount_due, p.amount_paid, p.paid_date
        FROM payments p JOIN {SELECTION_TABLE} s ON s.customer_id = p.customer_id
        WHERE p.due_date < s.max_t""",
}


def read_inputs(
    database_url: str, observations: pl.DataFrame, *, parts: int | None = None
) -> dict[str, pa.Table]:
    """The selected customers' rows of customers, transactions and payments, as Arrow.

    The customers are split into ``parts`` groups read at the same time over as many
    connections (decoding rows is CPU-bound in the database client); on PostgreSQL all
    connections share one snapshot, on SQLite each customer's rows come from one snapshot.
    Default: two connections from 5,000 customers on, else one.
    """
    selection = (
        observations.group_by("customer_id").agg(max_t=pl.col("observation_date").max()).to_arrow()
    )
    url = make_url(database_url)
    small = selection.num_rows < PARALLEL_READ_MIN_CUSTOMERS
    if url.get_backend_name() == "sqlite" and parts is None and small:
        return _read_sqlite(url.database or "", selection)
    if url.get_backend_name() == "sqlite":
        return _read_sqlite_in_subprocess(url.database or "", selection, parts)
    if parts is None:  # a second connection costs more than it saves on small reads
        parts = READ_CONNECTIONS if selection.num_rows >= PARALLEL_READ_MIN_CUSTOMERS else 1
    groups = sqlite_child.split(selection, parts)
    with ExitStack() as stack:
        connections = [stack.enter_context(_connect(database_url)) for _ in groups]
        _share_snapshot(connections)
        return _read_in_parallel(connections, groups)


def _read_in_parallel(connections: list[Any], groups: list[pa.Table]) -> dict[str, pa.Table]:
    """Each group over its own connection, in threads (ADBC fetches release the GIL)."""
    with ThreadPoolExecutor(len(groups)) as pool:
        results = list(pool.map(_read_group, connections, groups))
    return {name: pa.concat_tables([result[name] for result in results]) for name in QUERIES}


# SQLite is never read through ADBC in this process: ADBC's driver carries its own copy of the
# SQLite library, and two copies in one process break SQLite's POSIX file locks (after a
# feature read, new connections failed with "disk I/O error"; the SQLite authors warn this
# can corrupt a database). Small reads use the standard library's sqlite3; large ones run
# ADBC in a child process (its own SQLite, like any other process; ``sqlite_child.py``) and
# hand back Arrow IPC files: 15M rows took 45 s through sqlite3 rows and 7 s this way.
SQLITE_SCHEMAS = {
    "customers": pa.schema(
        [
            ("customer_id", pa.string()),
            ("created_at", pa.string()),
            ("monthly_income", pa.float64()),
            ("salary_day", pa.int64()),
            ("credit_limit", pa.float64()),
        ]
    ),
    "transactions": pa.schema(
        [
            ("customer_id", pa.string()),
            ("txn_id", pa.string()),
            ("txn_time", pa.string()),
            ("amount", pa.float64()),
            ("txn_type", pa.string()),
            ("category", pa.string()),
            ("merchant_id", pa.string()),
            ("channel", pa.string()),
            ("balance_after", pa.float64()),
        ]
    ),
    "payments": pa.schema(
        [
            ("customer_id", pa.string()),
            ("due_date", pa.string()),
            ("amount_due", pa.float64()),
            ("amount_paid", pa.float64()),
            ("paid_date", pa.string()),
        ]
    ),
}
FETCH_ROWS = 500_000


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
            name: _fetch_arrow(connection.execute(query), SQLITE_SCHEMAS[name])
            for name, query in QUERIES.items()
        }
    finally:
        connection.close()


def _read_sqlite_in_subprocess(
    path: str, selection: pa.Table, parts: int | None
) -> dict[str, pa.Table]:
    return sqlite_child.read(
        path,
        selection,
        QUERIES,
        SQLITE_SCHEMAS,
        table=SELECTION_TABLE,
        parts=parts or READ_CONNECTIONS,
    )


def _fetch_arrow(cursor: Any, schema: pa.Schema) -> pa.Table:
    """Rows in batches, turned into Arrow arrays of the given types."""
    batches = []
    with _collector_paused():
        while rows := cursor.fetchmany(FETCH_ROWS):
            batches.append(_record_batch(rows, schema))
    return pa.Table.from_batches(batches, schema=schema)


def _record_batch(rows: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    if isinstance(rows[0], tuple):  # DB-API rows: one conversion, no list per column
        struct = pa.array(rows, type=pa.struct(list(schema)))
        return pa.RecordBatch.from_struct_array(struct)
    columns = zip(*rows, strict=True)  # SQLAlchemy rows, which pyarrow takes only as columns
    arrays = [
        pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_PAUSES = {"count": 0, "was_enabled": False}  # reads in progress; the state before the first
_PAUSES_LOCK = threading.Lock()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while rows become Python tuples.

    Each row tuple counts toward the collector's thresholds, so a read of a few ten thousand
    rows set off full collections of the whole heap: 200 customers' 24,000 transactions took
    75 ms to read without one and 160-270 ms with one (in half the reads). The rows hold no
    cycles and are freed as soon as they are converted. The collector is process-wide and
    reads run in threads (the API), so pauses are counted: the first read to start turns it
    off, the last to end restores the state the first one found.
    """
    with _PAUSES_LOCK:
        if _PAUSES["count"] == 0:
            _PAUSES["was_enabled"] = gc.isenabled()
            gc.disable()
        _PAUSES["count"] += 1
    try:
        yield
    finally:
        with _PAUSES_LOCK:
            _PAUSES["count"] -= 1
            if _PAUSES["count"] == 0 and _PAUSES["was_enabled"]:
                gc.enable()


# A few customers at one date (the API's scoring) are read over the caller's pooled connection
# with the ids as bound parameters: no new connection, no temporary table. Above
# SELECTED_READ_MAX customers the bulk read of ``read_inputs`` is faster.
SELECTED_READ_MAX = 1_000
IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
SELECTED_QUERIES = {
    "customers": text("""
        SELECT customer_id, created_at, monthly_income, salary_day, credit_limit
        FROM customers WHERE customer_id IN :ids""").bindparams(IDS),
    # Every transaction before t, as the bulk read: features over the whole history (a
    # running balance) need all of them.
    "transactions": text("""
        SELECT customer_id, txn_id, txn_time, amount, txn_type, category, merchant_id, channel,
               balance_after
        FROM transactions WHERE customer_id IN :ids AND txn_time < :t""").bindparams(
        IDS, bindparam("t", type_=DateTime())
    ),
    "payments": text("""
        SELECT customer_id, due_date, amount_due, amount_paid, paid_date
        FROM payments WHERE customer_id IN :ids AND due_date < :day""").bindparams(
        IDS, bindparam("day", type_=Date())
    ),
}
# PostgreSQL's driver returns datetimes and dates where SQLite returns text.
POSTGRES_SCHEMAS = {
    "customers": SQLITE_SCHEMAS["customers"].set(1, pa.field("created_at", pa.timestamp("us"))),
    "transactions": SQLITE_SCHEMAS["transactions"].set(2, pa.field("txn_time", pa.timestamp("us"))),
    "payments": SQLITE_SCHEMAS["payments"]
    .set(1, pa.field("due_date", pa.date32()))
    .set(4, pa.field("paid_date", pa.date32())),
}


def read_at_date(
    connection: Connection, database_url: str, customer_ids: list[str], as_of: date
) -> dict[str, pa.Table]:
    """The rows of customers, transactions and payments that features at ``as_of`` need, as
    ``read_inputs`` returns them: over ``connection`` for up to ``SELECTED_READ_MAX``
    customers, else through the bulk read."""
    if len(customer_ids) > SELECTED_READ_MAX:
        observations = pl.DataFrame(
            {"customer_id": pl.Series(customer_ids, dtype=pl.String)}
        ).with_columns(observation_date=pl.lit(as_of, dtype=pl.Date))
        return read_inputs(database_url, observations)
    schemas = POSTGRES_SCHEMAS if connection.dialect.name == "postgresql" else SQLITE_SCHEMAS
    t = datetime.combine(as_of, datetime.min.time())
    parameters = {"ids": customer_ids, "t": t, "day": as_of}
    return {
        name: _fetch_arrow(connection.execute(query, parameters), schemas[name])
        for name, query in SELECTED_QUERIES.items()
    }


def _read_group(connection: Any, selection: pa.Table) -> dict[str, pa.Table]:
    cursor = connection.cursor()
    cursor.adbc_ingest(SELECTION_TABLE, selection, mode="create", temporary=True)
    tables = {}
    for name, query in QUERIES.items():
        cursor.execute(query)
        tables[name] = cursor.fetch_arrow_table()
    cursor.execute(f"DROP TABLE {SELECTION_TABLE}")
    return tables


def _share_snapshot(connections: list[Any]) -> None:
    """PostgreSQL: every connection reads the first one's snapshot."""
    if len(connections) < 2 or connections[0].adbc_get_info().get("vendor_name") != "PostgreSQL":
        return
    cursor = connections[0].cursor()
    cursor.execute("SELECT pg_export_snapshot()")
    snapshot = cursor.fetchone()[0]
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    for connection in connections[1:]:
        # SET TRANSACTION takes no bind parameters; the id is checked above.
        connection.cursor().execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")


# By default the driver reads all of pg_attribute and pg_type over a connection of its own
# before each connection: 60 ms of a 200-customer read, against 19 ms with its built-in table
# of PostgreSQL's own types, which are the only types these reads and the selection use.
BUILTIN_TYPES = {"adbc.postgresql.type_resolver_mode": "builtin"}


@contextmanager
def _connect(database_url: str) -> Iterator[Any]:
    """An ADBC connection in a read transaction (PostgreSQL: repeatable read, one snapshot
    for all three queries); rolled back at the end, nothing is written."""
    import adbc_driver_postgresql.dbapi as postgresql_adbc

    libpq_url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        connection = postgresql_adbc.connect(libpq_url, db_kwargs=BUILTIN_TYPES)
    except postgresql_adbc.NotSupportedError:  # an older driver, without the option
        connection = postgresql_adbc.connect(libpq_url)
    with connection:
        cursor = connection.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield connection
        connection.rollback()
