"""Ingest against hostile files, through the real CLI, on both databases (issue 11, items 6
and 14): ragged rows, quotes, Parquet booleans and nested columns, case-duplicate headers,
huge values; and chunked reading (duplicates and row numbers across chunks, all or nothing).

Each rejection: exit 1, one line per problem naming file, row and column, no traceback, and
the database exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from predelinq.cli.app import app
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.ingest import IngestError, ingest_files
from predelinq.ingest import validate as validate_module
from predelinq.ingest.load import lock_for_ingest
from support.databases import postgres_schema
from support.factories import (
    make_customer,
    make_history,
    make_transaction,
    snapshot,
    table_counts,
    write_csv,
    write_files,
)

IDS = ["C1", "C2"]
CUSTOMER_HEADER = "customer_id,created_at,monthly_income,salary_day,credit_limit"


@pytest.fixture
def stored(database, tmp_path):
    """The database with a small history already ingested."""
    history = tmp_path / "history"
    history.mkdir()
    ingest_files(database.engine, write_files(history, make_history(IDS)))
    return database


def reject(database, option: str, path: Path) -> str:
    """Run `predelinq ingest --<option> <path>`; assert it is rejected cleanly and changes
    nothing; return its stderr."""
    before = snapshot(database.engine)
    result = CliRunner().invoke(app, ["ingest", f"--{option}", str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "rejected, nothing was written" in result.stderr
    assert snapshot(database.engine) == before
    return result.stderr


def problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


# --- item 6: ragged and short rows, quotes -------------------------------------------------


def test_short_row_is_rejected_naming_its_row_not_stored_with_empty_fields(stored, tmp_path):
    """polars filled a short row's missing trailing fields with nulls and stored it."""
    path = tmp_path / "short.csv"
    path.write_text(f"{CUSTOMER_HEADER}\nN1,2024-01-01T00:00:00,100,5,10\nN2,2024-01-01\n")
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr) == [f"{path}, row 2: 2 field(s) where the header has 5"]


def test_long_row_is_rejected_naming_its_row(stored, tmp_path):
    path = tmp_path / "long.csv"
    rows = ["N1,2024-01-01T00:00:00,100,5,10", "N2,2024-01-01T00:00:00,100,5,10,extra"]
    path.write_text("\n".join([CUSTOMER_HEADER, *rows]) + "\n")
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr) == [f"{path}, row 2: 6 field(s) where the header has 5"]


def test_rows_after_a_ragged_row_and_a_quoted_newline_keep_their_numbers(stored, tmp_path):
    """A skipped ragged row must not shift the row numbers of later problems, and a quoted
    newline is inside its row, not a new one."""
    path = tmp_path / "mixed.csv"
    lines = [
        CUSTOMER_HEADER,
        '"multi\nline",2024-01-01T00:00:00,100,5,10',  # row 1, two lines
        "N2,2024-01-01",  # row 2: short
        "N3,2024-01-01T00:00:00,100,99,10",  # row 3: bad salary_day
    ]
    path.write_text("\n".join(lines) + "\n")
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr) == [
        f"{path}, row 2: 2 field(s) where the header has 5",
        f"{path}, row 3, column 'salary_day': must be <= 31, got 99",
    ]


def test_unterminated_quote_is_rejected_naming_the_row(stored, tmp_path):
    path = tmp_path / "quote.csv"
    rows = ["N1,2024-01-01T00:00:00,100,5,10", 'N2,2024-01-01T00:00:00,100,5,"10']
    path.write_text("\n".join([CUSTOMER_HEADER, *rows]) + "\n")
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr)[0].startswith(f"{path}, row 2")
    assert "quote" in stderr


def test_quote_opened_mid_file_names_the_row_and_says_quotes(stored, tmp_path):
    path = tmp_path / "quote.csv"
    rows = ['N1,"2024-01-01T00:00:00,100,5,10', "N2,2024-01-01T00:00:00,100,5,10"]
    path.write_text("\n".join([CUSTOMER_HEADER, *rows]) + "\n")
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr)[0].startswith(f"{path}, row 1: ")
    assert "check its quotes" in problem_lines(stderr)[0]


# --- item 6: Parquet booleans in numeric columns ---------------------------------------------


@pytest.mark.parametrize("column", ["monthly_income", "salary_day"])
def test_parquet_booleans_in_a_numeric_column_are_rejected_not_cast(stored, tmp_path, column):
    path = tmp_path / "bools.parquet"
    frame = pl.DataFrame([make_customer("N1"), make_customer("N2")]).with_columns(
        pl.Series(column, [True, False])
    )
    frame.write_parquet(path)
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr) == [
        f"{path}, column '{column}': booleans are not "
        + ("a number" if column == "monthly_income" else "a whole number")
        + ": write numbers"
    ]


# --- item 14: nested columns, case-duplicate headers, huge values ----------------------------


@pytest.mark.parametrize(
    "values",
    [
        pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())])),
        pa.array([[1.0], [2.0, 3.0]], pa.list_(pa.float64())),
    ],
    ids=["struct", "list"],
)
def test_nested_parquet_column_is_one_line_naming_file_and_column(stored, tmp_path, values):
    path = tmp_path / "nested.parquet"
    table = pa.table({"customer_id": ["N1", "N2"], "monthly_income": values})
    pq.write_table(table, path)
    stderr = reject(stored, "customers", path)
    (line,) = problem_lines(stderr)
    assert line.startswith(f"{path}, column 'monthly_income': nested values (")


def test_nested_extra_column_is_only_ignored(database, tmp_path):
    path = tmp_path / "extra.parquet"
    table = pa.table({"customer_id": ["N1"], "tags": pa.array([["a", "b"]])})
    pq.write_table(table, path)
    report = ingest_files(database.engine, {"customers": path})
    assert report.warnings == [f"{path}: ignored extra columns: tags"]
    assert table_counts(database.engine)["customers"] == 1


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_case_duplicate_headers_are_rejected(stored, tmp_path, file_format):
    """Names match case-insensitively, so `customer_id` and `Customer_ID` are one column
    given twice: which one would be read is not for us to guess."""
    frame = pl.DataFrame({"customer_id": ["N1"], "Customer_ID": ["N2"]})
    path = tmp_path / f"dup.{file_format}"
    if file_format == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    stderr = reject(stored, "customers", path)
    assert problem_lines(stderr) == [
        f"{path}, column 'customer_id': given more than once (names are matched "
        "case-insensitively): 'customer_id', 'Customer_ID'"
    ]


def test_a_huge_value_is_shown_truncated(stored, tmp_path):
    """A 1 MB value was echoed whole."""
    huge = "refund" + "x" * 1_000_000
    rows = [make_transaction("C1", "H1"), make_transaction("C1", "H2", txn_type=huge)]
    path = write_csv(tmp_path / "huge.csv", rows)
    stderr = reject(stored, "transactions", path)
    (line,) = problem_lines(stderr)
    shown = huge[:60] + "..."
    assert line == (
        f"{path}, row 2, column 'txn_type': unknown value '{shown}' "
        "(expected one of: credit, debit)"
    )
    assert len(stderr) < 1_000


def test_a_huge_extra_column_name_is_shown_truncated(database, tmp_path):
    name = "n" * 100_000
    path = write_csv(tmp_path / "c.csv", [{**make_customer("N1"), name: "x"}])
    result = CliRunner().invoke(app, ["ingest", "--customers", str(path)])
    assert result.exit_code == 0, result.output
    assert "n" * 60 + "..." in result.stderr
    assert len(result.stderr) < 1_000


def test_unknown_customer_echo_is_truncated(stored, tmp_path):
    stranger = "s" * 255
    path = write_csv(tmp_path / "t.csv", [make_transaction(stranger, "S1")])
    stderr = reject(stored, "transactions", path)
    (line,) = problem_lines(stderr)
    assert f"unknown customer '{'s' * 60}...'" in line and line.startswith(f"{path}, row 1, ")


# --- chunked reading: problems across chunks, all or nothing ---------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few rows, so a small file spans many of them."""
    monkeypatch.setattr(validate_module, "CSV_BLOCK_BYTES", 1024)
    monkeypatch.setattr(validate_module, "PARQUET_BATCH_ROWS", 7)


def _transactions(count: int) -> list[dict]:
    return [make_transaction(IDS[k % 2], f"K{k}") for k in range(count)]


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_many_chunks_load_every_row_once(stored, tmp_path, small_chunks, file_format):
    rows = _transactions(200)
    path = write_csv(tmp_path / "t.csv", rows)
    if file_format == "parquet":
        path = _as_parquet(path)
    report = ingest_files(stored.engine, {"transactions": path})
    assert report.counts["transactions"].inserted == 200
    assert table_counts(stored.engine)["transactions"] == 6 + 200


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_duplicate_key_in_a_later_chunk_names_both_rows(
    stored, tmp_path, small_chunks, file_format
):
    rows = _transactions(200)
    rows[180] = {**rows[180], "txn_id": "K3"}
    path = write_csv(tmp_path / "t.csv", rows)
    if file_format == "parquet":
        path = _as_parquet(path)
    before = snapshot(stored.engine)
    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"transactions": path})
    problem = raised.value.problems[0]
    assert (problem.row, problem.column) == (181, "txn_id")
    assert problem.message == "duplicate key: same txn_id as row 4"
    assert snapshot(stored.engine) == before


def test_bad_row_in_the_last_chunk_writes_nothing_of_any_file(stored, tmp_path, small_chunks):
    customers = write_csv(tmp_path / "c.csv", [make_customer(f"N{k}") for k in range(50)])
    rows = _transactions(300)
    rows[-1] = {**rows[-1], "amount": "-1"}
    path = write_csv(tmp_path / "t.csv", rows)
    before = snapshot(stored.engine)
    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"customers": customers, "transactions": path})
    assert [(p.row, p.column) for p in raised.value.problems] == [(300, "amount")]
    assert snapshot(stored.engine) == before


def test_unknown_customer_in_a_later_chunk_is_named_by_row(stored, tmp_path, small_chunks):
    rows = _transactions(100)
    rows[90] = {**rows[90], "customer_id": "nobody"}
    path = write_csv(tmp_path / "t.csv", rows)
    before = snapshot(stored.engine)
    with pytest.raises(IngestError) as raised:
        ingest_files(stored.engine, {"transactions": path})
    assert [(p.row, p.column) for p in raised.value.problems] == [(91, "customer_id")]
    assert snapshot(stored.engine) == before


def _as_parquet(path: Path) -> Path:
    target = path.with_suffix(".parquet")
    pl.read_csv(path, infer_schema=False).write_parquet(target, row_group_size=5)
    return target


def test_header_only_and_empty_files(database, tmp_path):
    header_only = tmp_path / "c.csv"
    header_only.write_text(CUSTOMER_HEADER + "\n")
    report = ingest_files(database.engine, {"customers": header_only})
    assert report.counts["customers"].rows == 0
    empty = tmp_path / "e.csv"
    empty.write_text("")
    stderr = reject(database, "customers", empty)
    assert problem_lines(stderr)[0].startswith(f"{empty}: cannot be read: ")


def test_sqlite_scratch_stage_file_is_removed_after_success_and_rejection(tmp_path, monkeypatch):
    """SQLite stages into a scratch file beside the database (its temporary tables live in
    memory); it must not outlive the call."""
    (tmp_path / "db").mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db' / 'x.db'}")
    customers = write_files(tmp_path, make_history(IDS))["customers"]
    assert CliRunner().invoke(app, ["ingest", "--customers", str(customers)]).exit_code == 0
    bad = write_csv(tmp_path / "t.csv", [make_transaction("nobody", "X1")])
    assert CliRunner().invoke(app, ["ingest", "--transactions", str(bad)]).exit_code == 1
    left = sorted(path.name for path in (tmp_path / "db").iterdir() if ".ingest-" in path.name)
    assert left == []


def test_a_quote_inside_an_unquoted_value_is_data(database, tmp_path):
    """Only a quote left open to the end of the file is an error, not an inch mark."""
    path = tmp_path / "c.csv"
    path.write_text('customer_id,monthly_income\nscreen 12" TV,100\nN2,200\n')
    report = ingest_files(database.engine, {"customers": path})
    assert report.counts["customers"].inserted == 2


def test_a_quoted_line_break_in_the_last_row_is_data(database, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('customer_id,monthly_income\nN1,100\n"two\nlines",200\n')
    report = ingest_files(database.engine, {"customers": path})
    assert report.counts["customers"].inserted == 2


@pytest.mark.postgres
def test_an_ingest_waits_only_for_ingests_into_its_own_schema(postgres_url: str) -> None:
    """The ingest lock is per schema: two lenders (schemas) of one PostgreSQL database
    ingest at once; two ingests into one schema take turns."""
    with postgres_schema(postgres_url) as first, postgres_schema(postgres_url) as second:
        engines = [open_database(Settings(database_url=url)) for url in (first, second)]
        try:
            with engines[0].begin() as holder:
                lock_for_ingest(holder)
                with engines[1].begin() as other:  # another schema: not held up
                    other.execute(text("SET LOCAL lock_timeout = '5s'"))
                    lock_for_ingest(other)
                with engines[0].begin() as same, pytest.raises(OperationalError, match="lock"):
                    same.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    lock_for_ingest(same)
        finally:
            for engine in engines:
                engine.dispose()
