"""The feature reads (db/readers/) return every transaction column, balance_after
included, on both databases and through every read path: the API's read over a pooled
connection (``read_at_date``), and the bulk read (``read_inputs``), small (one connection;
SQLite: sqlite3 here) and large (``read_connections`` connections; SQLite: ADBC in a child
process), as the settings choose."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date, datetime

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from predelinq.config import Settings
from predelinq.db.readers import arrow, at_date, inputs, read_at_date, read_inputs
from predelinq.db.readers.columns import COLUMNS
from predelinq.features import events
from predelinq.ingest import ingest_files
from support.factories import make_customer, make_transaction, write_csv

TRANSACTION_COLUMNS = [
    "customer_id",
    "txn_id",
    "txn_time",
    "amount",
    "txn_type",
    "category",
    "merchant_id",
    "channel",
    "balance_after",
]
AS_OF = date(2024, 12, 1)
# (customer, txn_id, time, balance_after): years before t, on t (not read) and after it
ROWS = [
    ("A", "A-old", "2023-01-15T08:00:00", "1500.75"),
    ("A", "A-older-debit", "2023-06-30T23:59:59", "-240.5"),
    ("A", "A-no-balance", "2024-03-01T10:00:00", ""),
    ("A", "A-recent", "2024-11-30T23:59:59.5", "0"),
    ("A", "A-at-t", "2024-12-01T00:00:00", "-1"),
    ("B", "B-old", "2024-01-02T09:00:00", "-98765.4321"),
    ("B", "B-later", "2025-01-02T09:00:00", "5"),
    ("C", "C-other-customer", "2024-02-02T09:00:00", "7"),
]


@pytest.fixture
def stored(database, tmp_path):
    rows = [
        make_transaction(c, txn_id, txn_time=when, balance_after=balance, amount="10")
        for c, txn_id, when, balance in ROWS
    ]
    rows.append(make_transaction("B", "", txn_time="2024-05-05T05:05:05", balance_after="-3"))
    files = {
        "customers": write_csv(tmp_path / "c.csv", [make_customer(c) for c in "ABC"]),
        "transactions": write_csv(tmp_path / "t.csv", rows),
    }
    ingest_files(database.engine, files)
    return database


# How the bulk read is asked to read: as a small read, or as a large one (every read is large)
STRATEGIES = ["small", "large"]


def _settings(database, strategy: str = "small") -> Settings:
    if strategy == "large":
        return Settings(database_url=database.url, large_read_customers=1, read_connections=2)
    return Settings(database_url=database.url)


def _expected() -> dict[str | None, tuple[str, float | None]]:
    """txn_id -> (customer_id, balance_after) of A's and B's transactions before AS_OF."""
    t = datetime.combine(AS_OF, datetime.min.time())
    expected: dict[str | None, tuple[str, float | None]] = {
        txn_id: (c, float(balance) if balance else None)
        for c, txn_id, when, balance in ROWS
        if c != "C" and datetime.fromisoformat(when) < t
    }
    expected[None] = ("B", -3.0)  # no txn_id
    return expected


def _check_transactions(table: pa.Table) -> None:
    assert table.column_names == TRANSACTION_COLUMNS
    assert table.schema.field("txn_id").type == pa.string()
    assert table.schema.field("balance_after").type == pa.float64()
    got = {row["txn_id"]: (row["customer_id"], row["balance_after"]) for row in table.to_pylist()}
    assert table.num_rows == len(got)
    assert got == _expected()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_read_inputs_returns_every_transaction_column(stored, strategy):
    observations = pl.DataFrame(
        {"customer_id": ["A", "B", "A"], "observation_date": [AS_OF, AS_OF, date(2024, 1, 1)]}
    )
    inputs = read_inputs(stored.engine, observations, _settings(stored, strategy))
    _check_transactions(inputs["transactions"])


def test_read_at_date_returns_all_history_before_t(stored):
    with stored.engine.connect() as connection:
        inputs = read_at_date(connection, ["A", "B", "nobody"], AS_OF)
    _check_transactions(inputs["transactions"])
    # older than the features' 120-day windows, and not only each customer's latest one
    assert {"A-old", "A-older-debit", "B-old"} <= set(inputs["transactions"]["txn_id"].to_pylist())


def test_read_at_date_and_read_inputs_agree(stored):
    observations = pl.DataFrame({"customer_id": ["A", "B"]}).with_columns(
        observation_date=pl.lit(AS_OF)
    )
    bulk = read_inputs(stored.engine, observations, _settings(stored))["transactions"]
    with stored.engine.connect() as connection:
        selected = read_at_date(connection, ["A", "B"], AS_OF)["transactions"]
    key = [("customer_id", "ascending"), ("txn_time", "ascending")]
    assert selected.sort_by(key).equals(bulk.sort_by(key))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_balance_after_set_only_after_many_rows_without_it(database, tmp_path, strategy):
    """ADBC's SQLite driver guesses column types from the first 1,024 rows: older rows
    loaded before exports carried balance_after must not stop the read of later ones."""
    customers = [make_customer(c) for c in ("A", "B")]
    old = [
        make_transaction("A", f"old-{k}", txn_time=f"2023-{1 + k // 200:02}-01T00:00:{k % 60:02}")
        for k in range(1_500)
    ]
    ingest_files(
        database.engine,
        {
            "customers": write_csv(tmp_path / "c.csv", customers),
            "transactions": write_csv(tmp_path / "old.csv", old),
        },
    )
    new = [
        make_transaction(c, f"new-{c}", txn_time="2024-06-01T00:00:00", balance_after="-12.5")
        for c in ("A", "B")
    ]
    ingest_files(database.engine, {"transactions": write_csv(tmp_path / "new.csv", new)})
    observations = pl.DataFrame({"customer_id": ["A", "B"]}).with_columns(
        observation_date=pl.lit(AS_OF)
    )

    table = read_inputs(database.engine, observations, _settings(database, strategy))
    table = table["transactions"]

    assert table.column_names == TRANSACTION_COLUMNS
    assert table.schema.field("balance_after").type == pa.float64()
    balances = dict(
        zip(table["txn_id"].to_pylist(), table["balance_after"].to_pylist(), strict=True)
    )
    assert len(balances) == 1_502
    assert balances["new-A"] == balances["new-B"] == -12.5
    assert sum(balance is None for balance in balances.values()) == 1_500


def test_read_with_no_rows_keeps_the_columns_and_types(database):
    observations = pl.DataFrame({"customer_id": ["nobody"], "observation_date": [AS_OF]})
    for strategy in STRATEGIES:
        settings = _settings(database, strategy)
        table = read_inputs(database.engine, observations, settings)["transactions"]
        assert table.num_rows == 0 and table.column_names == TRANSACTION_COLUMNS
        assert table.schema.field("balance_after").type == pa.float64()


@pytest.fixture(params=[True, False], ids=["collector-on", "collector-off"])
def collector(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The garbage collector on or off, as the caller of a read left it; restored after."""
    enabled = gc.isenabled()
    if request.param:
        gc.enable()
    else:
        gc.disable()
    yield request.param
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_reads_leave_the_garbage_collector_as_they_found_it(stored, collector):
    observations = pl.DataFrame({"customer_id": ["A", "B"]}).with_columns(
        observation_date=pl.lit(AS_OF)
    )
    read_inputs(stored.engine, observations, _settings(stored))
    assert gc.isenabled() is collector
    with stored.engine.connect() as connection:
        read_at_date(connection, ["A", "B"], AS_OF)
    assert gc.isenabled() is collector


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # text in a FLOAT column
def test_a_read_that_fails_midway_leaves_the_garbage_collector_as_it_found_it(stored, collector):
    with stored.engine.begin() as connection:
        connection.execute(text("UPDATE transactions SET amount = 'ten' WHERE txn_id = 'A-old'"))
    observations = pl.DataFrame({"customer_id": ["A"], "observation_date": [AS_OF]})
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        read_inputs(stored.engine, observations, _settings(stored))
    assert gc.isenabled() is collector


@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)  # read through ADBC
def test_postgres_read_falls_back_when_the_driver_lacks_the_builtin_types_option(
    stored, monkeypatch
):
    """Older ADBC drivers reject the type resolver option: the read connects without it."""
    monkeypatch.setattr(inputs, "BUILTIN_TYPES", {"adbc.postgresql.no_such_option": "builtin"})
    observations = pl.DataFrame(
        {"customer_id": ["A", "B", "A"], "observation_date": [AS_OF, AS_OF, date(2024, 1, 1)]}
    )
    _check_transactions(read_inputs(stored.engine, observations, _settings(stored))["transactions"])


def test_overlapping_reads_in_threads_restore_the_collector():
    """Read A starts, read B starts, A ends, B ends: the collector is on again (had B kept
    the state it found, off, the API process would run without it for good)."""
    was = gc.isenabled()
    gc.enable()
    try:
        first, second = arrow.collector_paused(), arrow.collector_paused()
        first.__enter__()
        second.__enter__()
        assert not gc.isenabled()
        first.__exit__(None, None, None)
        assert not gc.isenabled()  # B is still reading
        second.__exit__(None, None, None)
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_read_at_date_binds_many_ids_a_query_at_a_time(stored):
    """More ids than one query binds: A and B fall in different queries, and the rows are
    those of the bulk read."""
    fillers = [f"nobody-{k}" for k in range(at_date.IDS_PER_QUERY + 100)]
    with stored.engine.connect() as connection:
        inputs = read_at_date(connection, ["A", *fillers, "B"], AS_OF)
    _check_transactions(inputs["transactions"])
    assert sorted(inputs["customers"]["customer_id"].to_pylist()) == ["A", "B"]


def test_the_libpq_uri_comes_from_the_engine_with_password_and_options():
    """ADBC's driver takes a libpq URI: the engine's URL without SQLAlchemy's driver name, the
    password and the query (a schema's search_path) kept, escaped as they were."""
    url = "postgresql+psycopg://user:p%40ss%2Fw@db.example:6432/lender?options=-csearch_path%3Dt_1"
    engine = create_engine(url)
    try:
        assert inputs.libpq_uri(engine) == url.replace("postgresql+psycopg://", "postgresql://")
    finally:
        engine.dispose()


def test_the_engines_take_the_columns_the_readers_read():
    """One declaration: the engines' columns are the readers' (salary_day as a float)."""
    assert events.TRANSACTION_COLUMNS is COLUMNS["transactions"]
    assert events.PAYMENT_COLUMNS is COLUMNS["payments"]
    assert list(events.CUSTOMER_COLUMNS) == list(COLUMNS["customers"])
    assert events.CUSTOMER_COLUMNS["salary_day"] == pa.float64()
    assert list(COLUMNS["transactions"]) == TRANSACTION_COLUMNS
