"""The feature reads (db/readers/inputs.py) return every transaction column, balance_after
included, on both databases and through every read path."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date, datetime

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import text

from predelinq.db.readers import inputs as read
from predelinq.db.readers import read_at_date, read_inputs
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


@pytest.mark.parametrize("parts", [None, 2])
def test_read_inputs_returns_every_transaction_column(stored, parts):
    observations = pl.DataFrame(
        {"customer_id": ["A", "B", "A"], "observation_date": [AS_OF, AS_OF, date(2024, 1, 1)]}
    )
    inputs = read_inputs(stored.url, observations, parts=parts)
    _check_transactions(inputs["transactions"])


def test_read_at_date_returns_all_history_before_t(stored):
    with stored.engine.connect() as connection:
        inputs = read_at_date(connection, stored.url, ["A", "B", "nobody"], AS_OF)
    _check_transactions(inputs["transactions"])
    # older than the features' 120-day windows, and not only each customer's latest one
    assert {"A-old", "A-older-debit", "B-old"} <= set(inputs["transactions"]["txn_id"].to_pylist())


def test_read_at_date_and_read_inputs_agree(stored):
    observations = pl.DataFrame({"customer_id": ["A", "B"]}).with_columns(
        observation_date=pl.lit(AS_OF)
    )
    bulk = read_inputs(stored.url, observations)["transactions"]
    with stored.engine.connect() as connection:
        selected = read_at_date(connection, stored.url, ["A", "B"], AS_OF)["transactions"]
    key = [("customer_id", "ascending"), ("txn_time", "ascending")]
    assert selected.sort_by(key).equals(bulk.sort_by(key))


@pytest.mark.parametrize("parts", [None, 2])
def test_balance_after_set_only_after_many_rows_without_it(database, tmp_path, parts):
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

    table = read_inputs(database.url, observations, parts=parts)["transactions"]

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
    for parts in (None, 2):
        table = read_inputs(database.url, observations, parts=parts)["transactions"]
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
    read_inputs(stored.url, observations)
    assert gc.isenabled() is collector
    with stored.engine.connect() as connection:
        read_at_date(connection, stored.url, ["A", "B"], AS_OF)
    assert gc.isenabled() is collector


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # text in a FLOAT column
def test_a_read_that_fails_midway_leaves_the_garbage_collector_as_it_found_it(stored, collector):
    with stored.engine.begin() as connection:
        connection.execute(text("UPDATE transactions SET amount = 'ten' WHERE txn_id = 'A-old'"))
    observations = pl.DataFrame({"customer_id": ["A"], "observation_date": [AS_OF]})
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        read_inputs(stored.url, observations)
    assert gc.isenabled() is collector


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # read through ADBC
def test_postgres_read_falls_back_when_the_driver_lacks_the_builtin_types_option(
    stored, monkeypatch
):
    """Older ADBC drivers reject the type resolver option: the read connects without it."""
    monkeypatch.setattr(read, "BUILTIN_TYPES", {"adbc.postgresql.no_such_option": "builtin"})
    observations = pl.DataFrame(
        {"customer_id": ["A", "B", "A"], "observation_date": [AS_OF, AS_OF, date(2024, 1, 1)]}
    )
    _check_transactions(read_inputs(stored.url, observations)["transactions"])


def test_overlapping_reads_in_threads_restore_the_collector():
    """Read A starts, read B starts, A ends, B ends: the collector is on again (had B kept
    the state it found, off, the API process would run without it for good)."""
    was = gc.isenabled()
    gc.enable()
    try:
        first, second = read._collector_paused(), read._collector_paused()
        first.__enter__()
        second.__enter__()
        assert not gc.isenabled()
        first.__exit__(None, None, None)
        assert not gc.isenabled()  # B is still reading
        second.__exit__(None, None, None)
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
