"""Ingest: every validation rule, all-or-nothing writes, idempotent upserts, on both databases."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from predelinq.db import schema
from predelinq.ingest import IngestError, ingest_files
from predelinq.ingest.contract import TABLE_SPECS
from support.factories import (
    make_customer,
    make_history,
    make_label,
    make_payment,
    make_transaction,
    snapshot,
    table_counts,
    write_csv,
    write_files,
)

IDS = ["C1", "C2", "C3"]


@pytest.fixture
def stored(database, tmp_path):
    """The database with a small consistent history already ingested."""
    files = write_files(tmp_path, make_history(IDS))
    ingest_files(database.engine, files)
    return database


def test_ingest_loads_every_table_and_reingest_adds_nothing(database, tmp_path):
    files = write_files(tmp_path, make_history(IDS))
    first = ingest_files(database.engine, files)
    counts = table_counts(database.engine)
    second = ingest_files(database.engine, files)

    assert counts == {"customers": 3, "transactions": 9, "payments": 6, "labels": 3}
    assert {name: c.inserted for name, c in first.counts.items()} == counts
    assert table_counts(database.engine) == counts
    assert all(c.inserted == 0 and c.updated == 0 for c in second.counts.values())


# (table, row overrides on data row 3, column, words the message must contain)
BAD_ROWS = [
    ("transactions", {"txn_type": "refund"}, "txn_type", "unknown value 'refund'"),
    ("transactions", {"amount": "-5"}, "amount", "must be > 0"),
    ("transactions", {"amount": "0"}, "amount", "must be > 0"),
    ("transactions", {"amount": "ten"}, "amount", "not a number"),
    ("transactions", {"amount": "nan"}, "amount", "not a finite number"),
    ("transactions", {"txn_time": "2024-02-30T10:00:00"}, "txn_time", "not an ISO 8601 timestamp"),
    ("transactions", {"txn_time": ""}, "txn_time", "missing value"),
    ("transactions", {"customer_id": ""}, "customer_id", "missing value"),
    ("transactions", {"txn_id": "C1-T0"}, "txn_id", "duplicate key: same txn_id as row 1"),
    ("customers", {"customer_id": "N0"}, "customer_id", "duplicate key: same customer_id as row 1"),
    ("customers", {"customer_id": "x" * 256}, "customer_id", "longer than 255 characters"),
    ("customers", {"customer_id": "nul\x00id"}, "customer_id", "contains a NUL character"),
    ("transactions", {"merchant_id": "M\x001"}, "merchant_id", "contains a NUL character"),
    ("transactions", {"balance_after": "12,50"}, "balance_after", "not a number: '12,50'"),
    ("transactions", {"balance_after": "-inf"}, "balance_after", "not a finite number"),
    ("customers", {"salary_day": "32"}, "salary_day", "must be <= 31"),
    ("customers", {"salary_day": "0"}, "salary_day", "must be >= 1"),
    ("customers", {"salary_day": "1.5"}, "salary_day", "not a whole number"),
    ("customers", {"monthly_income": "-1"}, "monthly_income", "must be >= 0"),
    ("customers", {"created_at": "yesterday"}, "created_at", "not an ISO 8601 timestamp"),
    ("payments", {"amount_due": "-1"}, "amount_due", "must be >= 0"),
    ("payments", {"amount_paid": "-0.01"}, "amount_paid", "must be >= 0"),
    ("payments", {"due_date": "15/02/2024"}, "due_date", "not a date (YYYY-MM-DD)"),
    ("payments", {"paid_date": "2024-02-31"}, "paid_date", "not a date"),
    (
        "payments",
        {"customer_id": "C1", "due_date": "2024-02-15"},
        "customer_id, due_date",
        "duplicate key",
    ),
    ("labels", {"label": "2"}, "label", "must be <= 1"),
    ("labels", {"label": "yes"}, "label", "not a whole number"),
    ("labels", {"days_to_default": "-3"}, "days_to_default", "must be >= 0"),
    (
        "labels",
        {"observation_date": "2024-04-01", "customer_id": "C1"},
        "customer_id, observation_date",
        "duplicate key",
    ),
    ("labels", {"customer_id": "nobody"}, "customer_id", "unknown customer 'nobody'"),
    ("payments", {"customer_id": "nobody"}, "customer_id", "unknown customer 'nobody'"),
]


@pytest.mark.parametrize(("table", "overrides", "column", "words"), BAD_ROWS)
def test_bad_row_rejects_file_naming_row_and_column(
    stored, tmp_path, table, overrides, column, words
):
    rows = _three_rows(table)
    rows[2] = {**rows[2], **overrides}
    path = write_csv(tmp_path / f"bad_{table}.csv", rows)
    before = snapshot(stored.engine)

    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {table: path})

    problem = raised.value.problems[0]
    assert (problem.file, problem.row, problem.column) == (str(path), 3, column)
    assert words in problem.message
    assert f"bad_{table}.csv, row 3, column '{column}'" in str(raised.value)
    assert snapshot(stored.engine) == before


def _three_rows(table: str) -> list[dict]:
    if table == "customers":
        return [make_customer(f"N{k}") for k in range(3)]
    if table == "transactions":
        return [make_transaction("C1", f"C1-T{k}", balance_after=f"{-10.5 * k}") for k in range(3)]
    if table == "payments":
        return [make_payment("C1", f"2024-0{m}-15") for m in (2, 4, 5)]
    return [make_label("C1", f"2024-0{m}-01") for m in (4, 5, 6)]


def test_missing_required_column_is_named(stored, tmp_path):
    rows = [{k: v for k, v in make_transaction().items() if k != "txn_type"}]
    path = write_csv(tmp_path / "transactions.csv", rows)
    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"transactions": path})
    assert "column 'txn_type': missing required column" in str(raised.value)


def test_whole_row_duplicate_without_txn_id_is_rejected(stored, tmp_path):
    rows = [
        make_transaction(txn_id="", amount="1"),
        make_transaction(txn_id="", amount="2"),
        make_transaction(txn_id="", amount="1"),
    ]
    path = write_csv(tmp_path / "transactions.csv", rows)
    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"transactions": path})
    assert raised.value.problems[0].row == 3
    assert "equal to row 1" in raised.value.problems[0].message


def test_one_bad_file_in_a_call_writes_nothing_at_all(database, tmp_path):
    tables = make_history(["A", "B"])
    tables["labels"][1]["label"] = "7"
    files = write_files(tmp_path, tables)
    with pytest.raises(IngestError):
        ingest_files(database.engine, files)
    assert table_counts(database.engine) == dict.fromkeys(table_counts(database.engine), 0)


def test_events_may_name_customers_from_the_same_call(database, tmp_path):
    files = write_files(tmp_path, make_history(["NEW"]))
    report = ingest_files(database.engine, files)
    assert report.counts["labels"].inserted == 1


HOSTILE_IDS = [
    "x'); DROP TABLE customers;--",
    "ümlaut-客户-3",
    ' spaced "quoted", comma ',
    "a\\b%_",
]


def test_hostile_and_unicode_ids_are_stored_and_found_verbatim(database, tmp_path):
    files = write_files(tmp_path, make_history(HOSTILE_IDS))
    ingest_files(database.engine, files)
    with database.engine.connect() as connection:
        for customer_id in HOSTILE_IDS:
            query = select(schema.transactions.c.customer_id).where(
                schema.transactions.c.customer_id == customer_id
            )
            assert connection.execute(query).scalars().all() == [customer_id] * 3
        stored = connection.execute(select(schema.customers.c.customer_id)).scalars().all()
    assert sorted(stored) == sorted(HOSTILE_IDS)


def test_parquet_input_matches_csv(database, tmp_path):
    tables = make_history(IDS)
    csv_files = write_files(tmp_path, tables)
    parquet_dir = tmp_path / "pq"
    parquet_dir.mkdir()
    parquet_files = {}
    for name, path in csv_files.items():
        parquet_files[name] = parquet_dir / f"{name}.parquet"
        pl.read_csv(path, infer_schema=False).write_parquet(parquet_files[name])
    ingest_files(database.engine, parquet_files)
    after_parquet = snapshot(database.engine)
    report = ingest_files(database.engine, csv_files)
    assert all(c.inserted == 0 and c.updated == 0 for c in report.counts.values())
    assert snapshot(database.engine) == after_parquet


def test_timestamps_naive_are_utc_and_aware_are_converted(database, tmp_path):
    rows = [
        make_transaction(txn_id="naive", txn_time="2024-03-10T23:30:00"),
        make_transaction(txn_id="zulu", txn_time="2024-03-10T23:30:00Z"),
        make_transaction(txn_id="plus2", txn_time="2024-03-11T01:30:00+02:00"),
        make_transaction(txn_id="minus5", txn_time="2024-03-10 18:30:00.250-05:00"),
    ]
    files = {
        "customers": write_csv(tmp_path / "c.csv", [make_customer()]),
        "transactions": write_csv(tmp_path / "t.csv", rows),
    }
    ingest_files(database.engine, files)
    with database.engine.connect() as connection:
        times = dict(
            connection.execute(
                select(schema.transactions.c.txn_id, schema.transactions.c.txn_time)
            ).all()
        )
    assert {t.isoformat() for k, t in times.items() if k != "minus5"} == {"2024-03-10T23:30:00"}
    assert times["minus5"].isoformat() == "2024-03-10T23:30:00.250000"


def test_extra_columns_are_ignored_with_a_warning(database, tmp_path):
    path = write_csv(tmp_path / "customers.csv", [make_customer(segment="retail", notes="x")])
    report = ingest_files(database.engine, {"customers": path})
    assert report.warnings == [f"{path}: ignored extra columns: segment, notes"]
    assert table_counts(database.engine)["customers"] == 1


def test_upsert_updates_changed_rows_and_never_blanks_stored_values(stored, tmp_path):
    later = [
        make_payment("C1", "2024-03-15", amount_paid="", paid_date=""),
        make_payment("C2", "2024-03-15", amount_paid="120", paid_date="2024-03-20"),
    ]
    customers = [make_customer("C1", created_at="2024-06-01T00:00:00", monthly_income="")]
    report = ingest_files(
        stored.engine,
        {
            "customers": write_csv(tmp_path / "c.csv", customers),
            "payments": write_csv(tmp_path / "p.csv", later),
        },
    )
    with stored.engine.connect() as connection:
        c1 = connection.execute(
            select(schema.customers).where(schema.customers.c.customer_id == "C1")
        ).one()
        payments = {
            (r.customer_id, r.due_date.isoformat()): r
            for r in connection.execute(select(schema.payments))
        }
    assert report.counts["payments"].updated == 1 and report.counts["payments"].unchanged == 1
    assert report.counts["customers"].unchanged == 1  # earlier first-seen and known income kept
    assert c1.created_at.isoformat() == "2024-01-01T00:00:00" and c1.monthly_income == 3500
    assert payments[("C1", "2024-03-15")].paid_date is not None
    assert payments[("C2", "2024-03-15")].amount_paid == 120


def test_transactions_without_txn_id_deduplicate_on_the_whole_row(stored, tmp_path):
    rows = [
        make_transaction(txn_id="", amount="1"),
        make_transaction(txn_id="", amount="1", category=""),
        make_transaction(txn_id="", amount="2"),
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    first = ingest_files(stored.engine, {"transactions": path})
    second = ingest_files(stored.engine, {"transactions": path})
    assert first.counts["transactions"].inserted == 3
    assert second.counts["transactions"].inserted == 0
    assert table_counts(stored.engine)["transactions"] == 9 + 3


def test_customers_without_created_at_are_first_seen_now(database, tmp_path):
    path = write_csv(tmp_path / "c.csv", [{"customer_id": "Z"}])
    ingest_files(database.engine, {"customers": path})
    with database.engine.connect() as connection:
        created = connection.execute(select(schema.customers.c.created_at)).scalar_one()
    assert created.year >= 2026


def test_unreadable_and_unknown_files_are_rejected(database, tmp_path):
    wrong = tmp_path / "customers.xlsx"
    wrong.write_text("x")
    with pytest.raises(IngestError, match="unknown file type"):
        ingest_files(database.engine, {"customers": wrong})
    broken = tmp_path / "customers.parquet"
    broken.write_text("not parquet")
    with pytest.raises(IngestError, match="cannot be read"):
        ingest_files(database.engine, {"customers": Path(broken)})


def test_numbers_survive_exactly(database, tmp_path):
    amounts = ["1234.5678901234567", "0.30000000000000004", "1e-07", "98765432109.25"]
    rows = [make_transaction(txn_id=f"T{k}", amount=a) for k, a in enumerate(amounts)]
    files = {
        "customers": write_csv(tmp_path / "c.csv", [make_customer()]),
        "transactions": write_csv(tmp_path / "t.csv", rows),
    }
    ingest_files(database.engine, files)
    with database.engine.connect() as connection:
        stored = dict(
            connection.execute(
                select(schema.transactions.c.txn_id, schema.transactions.c.amount)
            ).all()
        )
    assert [stored[f"T{k}"] for k in range(len(amounts))] == [float(a) for a in amounts]


def test_contract_columns_are_the_tables_columns_in_order():
    """SQLite staging writes a file's columns by position into a copy of the table; the only
    column after them is the loader's own ``labels.ingested_at``."""
    for name, spec in TABLE_SPECS.items():
        columns = [c.name for c in schema.metadata.tables[name].columns]
        assert columns[: len(spec.column_names)] == spec.column_names, name
        assert columns[len(spec.column_names) :] == (["ingested_at"] if name == "labels" else [])


# --- balance_after: optional, any finite number, never blanked ------------------------------

BALANCES = ["-1234.56", "0", "", "98765432109.25", "-0.30000000000000004", "1e-07", "-0"]


def _balances(engine) -> dict[str, float | None]:
    with engine.connect() as connection:
        query = select(schema.transactions.c.txn_id, schema.transactions.c.balance_after)
        return dict(connection.execute(query).all())


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_balance_after_loads_negative_zero_and_empty_values_exactly(
    database, tmp_path, file_format
):
    rows = [make_transaction(txn_id=f"T{k}", balance_after=b) for k, b in enumerate(BALANCES)]
    path = write_csv(tmp_path / "t.csv", rows)
    if file_format == "parquet":  # a typed float column with nulls, as a core-banking export
        frame = pl.read_csv(path, infer_schema=False).with_columns(
            pl.col("balance_after").cast(pl.Float64)
        )
        path = tmp_path / "t.parquet"
        frame.write_parquet(path)
    files = {"customers": write_csv(tmp_path / "c.csv", [make_customer()]), "transactions": path}

    report = ingest_files(database.engine, files)

    assert report.counts["transactions"].inserted == len(BALANCES)
    expected = {f"T{k}": float(b) if b else None for k, b in enumerate(BALANCES)}
    assert _balances(database.engine) == expected
    again = ingest_files(database.engine, files)
    assert again.counts["transactions"].unchanged == len(BALANCES)


def test_transactions_without_balance_after_column_load_as_null(database, tmp_path):
    rows = [make_transaction(txn_id=f"T{k}") for k in range(3)]
    assert "balance_after" not in rows[0]
    files = {
        "customers": write_csv(tmp_path / "c.csv", [make_customer()]),
        "transactions": write_csv(tmp_path / "t.csv", rows),
    }
    report = ingest_files(database.engine, files)
    assert report.counts["transactions"].inserted == 3 and report.warnings == []
    assert _balances(database.engine) == {"T0": None, "T1": None, "T2": None}


def test_non_numeric_balance_after_names_file_row_and_column_and_writes_nothing(stored, tmp_path):
    rows = [
        make_transaction("C1", "N0", balance_after="-5"),
        make_transaction("C1", "N1", balance_after=""),
        make_transaction("C1", "N2", balance_after="overdrawn"),
    ]
    path = write_csv(tmp_path / "bad_balances.csv", rows)
    before = snapshot(stored.engine)

    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"transactions": path})

    assert [(p.file, p.row, p.column) for p in raised.value.problems] == [
        (str(path), 3, "balance_after")
    ]
    assert "bad_balances.csv, row 3, column 'balance_after': not a number: 'overdrawn'" in str(
        raised.value
    )
    assert snapshot(stored.engine) == before


def test_reingest_never_blanks_a_stored_balance_after(stored, tmp_path):
    def ingest(name: str, rows: list[dict]) -> int:
        report = ingest_files(stored.engine, {"transactions": write_csv(tmp_path / name, rows)})
        return report.counts["transactions"].updated

    first = [
        make_transaction("C1", "B1", balance_after="-50.25"),
        make_transaction("C1", "B2", balance_after=""),
    ]
    assert ingest("first.csv", first) == 0
    # an empty cell, then a file without the column: the stored balance stays
    assert ingest("empty.csv", [make_transaction("C1", "B1", balance_after="")]) == 0
    assert ingest("absent.csv", [make_transaction("C1", "B1")]) == 0
    assert _balances(stored.engine)["B1"] == -50.25
    # a value where none was stored, and a changed value, are updates
    later = [
        make_transaction("C1", "B1", balance_after="12"),
        make_transaction("C1", "B2", balance_after="-0.01"),
    ]
    assert ingest("later.csv", later) == 2
    balances = _balances(stored.engine)
    assert (balances["B1"], balances["B2"]) == (12.0, -0.01)
    assert table_counts(stored.engine)["transactions"] == 9 + 2


def test_transactions_without_txn_id_are_identified_with_their_balance(stored, tmp_path):
    rows = [
        make_transaction(txn_id="", amount="5", balance_after="-1.5"),
        make_transaction(txn_id="", amount="5", balance_after="-6.5"),
        make_transaction(txn_id="", amount="5", balance_after=""),
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    first = ingest_files(stored.engine, {"transactions": path})
    second = ingest_files(stored.engine, {"transactions": path})
    assert first.counts["transactions"].inserted == 3
    assert second.counts["transactions"].inserted == 0
    assert table_counts(stored.engine)["transactions"] == 9 + 3


COPY_METACHARACTER_IDS = ["\\.", "\\N", "back\\slash", "tab\there", "new\nline", "\\.\n"]


def test_copy_metacharacters_in_ids_are_data_on_every_staging_path(database, tmp_path):
    """PostgreSQL's COPY read a lone `\\.` as end-of-data: labels of an unknown customer
    `\\.` were accepted and a retrain read a third of its labels. Every staging path (ingest,
    the retrain's selection and its training status) must take such ids as data."""
    from datetime import datetime

    from predelinq.retraining.selection import mark_trained, read_labels, select_customers

    ids = COPY_METACHARACTER_IDS
    tables = make_history(ids)
    files = {}
    for name, rows in tables.items():
        files[name] = tmp_path / f"{name}.parquet"
        pl.DataFrame(rows).write_parquet(files[name])
    ingest_files(database.engine, files)
    with database.engine.connect() as connection:
        stored = connection.execute(select(schema.customers.c.customer_id)).scalars().all()
        for customer_id in ids:
            query = select(schema.transactions.c.customer_id).where(
                schema.transactions.c.customer_id == customer_id
            )
            assert connection.execute(query).scalars().all() == [customer_id] * 3
    assert sorted(stored) == sorted(ids)

    stranger = tmp_path / "stranger.parquet"
    pl.DataFrame([make_label("\\.")]).with_columns(customer_id=pl.lit("\\.y")).write_parquet(
        stranger
    )
    with pytest.raises(IngestError):
        ingest_files(database.engine, {"labels": stranger})

    selected = select_customers(database.engine, "all", seed=0)
    observations = read_labels(database.engine, selected)
    assert sorted(observations["customer_id"].to_list()) == sorted(ids)
    parts = selected.select("customer_id", part=pl.lit("fit"), learnt=pl.lit(True))
    with database.engine.begin() as connection:
        connection.execute(
            schema.model_versions.insert().values(
                model_version="v",
                created_at=datetime(2026, 1, 1),
                artifact_path="x",
                sha256="0" * 64,
                threshold=0.5,
                details={},
            )
        )
        mark_trained(connection, selected, datetime(2026, 1, 1), model_version="v", parts=parts)
    status = schema.customer_training_status
    learnt = schema.model_training_customers
    with database.engine.connect() as connection:
        trained = connection.execute(select(status.c.customer_id)).scalars().all()
        recorded = connection.execute(select(learnt.c.customer_id)).scalars().all()
    assert sorted(trained) == sorted(recorded) == sorted(ids)
