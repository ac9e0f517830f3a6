"""The installed ``predelinq`` console script, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from support.cli import command_paths, run_cli
from support.factories import (
    make_customer,
    make_history,
    make_transaction,
    snapshot,
    table_counts,
    write_csv,
    write_files,
)

COMMANDS = command_paths()


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("predelinq ")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run_cli(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_ingest_rejects_bad_row_with_exit_code_and_message(database, tmp_path):
    files = write_files(tmp_path, make_history(["C1"]))
    assert (
        run_cli(
            "ingest", "--customers", str(files["customers"]), database_url=database.url
        ).returncode
        == 0
    )
    rows = [make_transaction(txn_id=f"T{k}") for k in range(3)]
    rows[2]["txn_type"] = "refund"
    bad = write_csv(tmp_path / "bad.csv", rows)
    before = snapshot(database.engine)

    result = run_cli("ingest", "--transactions", str(bad), database_url=database.url)

    assert result.returncode == 1
    assert f"{bad}, row 3, column 'txn_type': unknown value 'refund'" in result.stderr
    assert snapshot(database.engine) == before


def test_ingest_json_reports_counts_per_table(database, tmp_path):
    files = write_files(tmp_path, make_history(["C1", "C2"]))
    args = [arg for name, path in files.items() for arg in (f"--{name}", str(path))]
    first = json.loads(run_cli("ingest", *args, "--json", database_url=database.url).stdout)
    second = json.loads(run_cli("ingest", *args, "--json", database_url=database.url).stdout)
    assert first["tables"]["transactions"] == {
        "rows": 6,
        "inserted": 6,
        "updated": 0,
        "unchanged": 0,
    }
    assert {t["inserted"] for t in second["tables"].values()} == {0}


def test_init_is_idempotent_and_summary_reads(database):
    for _ in range(2):
        result = run_cli("init", database_url=database.url)
        assert result.returncode == 0, result.stderr
    summary = json.loads(run_cli("summary", "--json", database_url=database.url).stdout)
    assert summary["customers"]["rows"] == 0


def test_unreachable_database_exits_3_without_leaking_the_password():
    result = run_cli("init", database_url="postgresql://user:s3cret@127.0.0.1:1/db")
    assert result.returncode == 3
    assert "s3cret" not in result.stdout + result.stderr
    assert "user:***@127.0.0.1:1/db" in result.stderr


def test_ingest_without_files_is_a_usage_error(tmp_path):
    result = run_cli("ingest", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2


def test_features_list_json_is_the_registry():
    from predelinq.features import builtin_features

    listed = json.loads(run_cli("features", "list", "--json").stdout)
    assert [row["name"] for row in listed] == [feature.name for feature in builtin_features()]
    assert set(listed[0]) == {"name", "family", "origin", "source", "definition", "description"}
    assert {row["origin"] for row in listed} == {"built-in"}


def test_features_export_for_chosen_customers(database, tmp_path):
    files = write_files(tmp_path, make_history(["C1", "C2", "C3"]))
    args = [arg for name, path in files.items() for arg in (f"--{name}", str(path))]
    assert run_cli("ingest", *args, database_url=database.url).returncode == 0
    chosen = tmp_path / "chosen.txt"
    chosen.write_text("C3\nC1\nNOPE\n")
    output = tmp_path / "out" / "features.csv"

    result = run_cli(
        "features",
        "export",
        "--as-of",
        "2024-03-01",
        "--customers",
        str(chosen),
        "--output",
        str(output),
        database_url=database.url,
    )

    assert result.returncode == 0, result.stderr
    exported = pl.read_csv(output)
    assert exported["customer_id"].to_list() == ["C1", "C3"]  # the unknown id is left out
    assert "1 unknown customer id(s) left out: NOPE" in result.stderr
    assert exported["observation_date"].to_list() == ["2024-03-01"] * 2
    # three debits of 42.50 on 2024-02-01..03, all within 30 days of 2024-03-01
    assert exported["spend_total_30"].to_list() == [127.5, 127.5]


def test_user_text_with_rich_markup_is_printed_not_parsed(database, tmp_path):
    """Issue 11 item 4: an extra column named `[/bold]` crashed the warning after the rows
    were committed, and the exit code said nothing was written."""
    path = write_csv(tmp_path / "[red]customers.csv", [make_customer("C1", **{"[/bold]": "x"})])

    result = run_cli("ingest", "--customers", str(path), database_url=database.url)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "ignored extra columns: [/bold]" in result.stderr
    assert table_counts(database.engine)["customers"] == 1
    promoted = run_cli("promote", "[/bold]", database_url=database.url)
    assert "Traceback" not in promoted.stderr and "'[/bold]'" in promoted.stderr
    assert promoted.returncode == 3


@pytest.mark.parametrize(
    "command",
    [
        ("ingest", "--customers", "{a}", "--customers", "{b}"),
        ("score", "--output", "{out}", "--customers", "{a}", "--customers", "{b}"),
        ("features", "export", "--as-of", "2024-01-01", "--output", "{out}",
         "--customers", "{a}", "--customers", "{b}"),
    ],
    ids=["ingest", "score", "features-export"],
)  # fmt: skip
def test_a_file_option_given_twice_is_a_usage_error(database, tmp_path, command):
    """Issue 11 item 5: `--customers a.csv --customers b.csv` silently dropped a.csv."""
    a = write_csv(tmp_path / "a.csv", [make_customer("A")])
    b = write_csv(tmp_path / "b.csv", [make_customer("B")])
    values = {"a": str(a), "b": str(b), "out": str(tmp_path / "out.csv")}
    before = snapshot(database.engine)

    result = run_cli(*(part.format(**values) for part in command), database_url=database.url)

    assert result.returncode == 2, result.stderr
    assert "--customers was given 2 times" in result.stderr and str(a) in result.stderr
    assert snapshot(database.engine) == before and not (tmp_path / "out.csv").exists()


def test_a_bad_setting_is_one_line_and_exit_2_without_echoing_values(tmp_path):
    (tmp_path / "predelinq.toml").write_text("[training]\nfolds = 1\n")
    bad_toml = run_cli("status", database_url=f"sqlite:///{tmp_path / 'p.db'}", cwd=tmp_path)
    assert bad_toml.returncode == 2 and "Traceback" not in bad_toml.stderr
    assert "configuration: training.folds: Input should be greater than or equal to 2" in (
        bad_toml.stderr
    )
    secret = run_cli("status", database_url="mysql://u:SuperSecret42@h/db", cwd=tmp_path)
    assert secret.returncode == 2 and "configuration: DATABASE_URL" in secret.stderr
    assert "SuperSecret42" not in secret.stderr + secret.stdout


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:SuperSecret42@[::1/db",  # unparseable host
        "postgresql://u:SuperSecret42@h:notaport/db",  # unparseable port
        "postgresql://u:SuperSecret42@127.0.0.1:1/db",  # unreachable
        "postgresql://u@127.0.0.1:1/db?password=SuperSecret42",  # password as a parameter
        "mysql://u:SuperSecret42@h/db",  # unsupported
    ],
)
def test_a_bad_database_url_is_one_line_without_the_password(url, tmp_path):
    result = run_cli("status", database_url=url, cwd=tmp_path)
    assert result.returncode in (2, 3), result.stderr
    assert "Traceback" not in result.stderr and "SuperSecret42" not in result.stderr
    assert "***" in result.stderr or "mysql" in result.stderr


def test_a_mistyped_sqlite_directory_is_exit_3_and_creates_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    result = run_cli("check", database_url=f"sqlite:///{missing / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"the directory {missing} of the SQLite database does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


def test_the_default_database_directory_is_created_on_first_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and k != "PREDELINQ_CONFIG"}
    executable = Path(sys.executable).with_name("predelinq")
    result = subprocess.run(
        [str(executable), "status"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "predelinq.db").exists()


def test_check_with_nothing_to_do_loads_no_ml_library(tmp_path):
    """The cron case: a few queries, without importing XGBoost, Polars, NumPy or DuckDB."""
    probe = (
        "import sys\n"
        "from predelinq.cli.app import app\n"
        "try:\n"
        "    app(['check', '--json'], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = ('xgboost', 'polars', 'numpy', 'pyarrow', 'duckdb')\n"
        "    print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["retraining_needed"] is False
    assert result.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", b"customer_id\n", "no customer ids in the file"),
        ("other.csv", b"id\nA\n", "has no customer_id column (columns: id)"),
        ("twice.csv", b"customer_id,CUSTOMER_ID\nA,B\n", "has several customer_id columns"),
        ("empty.txt", b"\n\n", "no customer ids in the file"),
        ("broken.parquet", b"not parquet", "cannot be read"),
        ("latin1.txt", "Müller\n".encode("latin-1"), "cannot be read"),
    ],
)
@pytest.mark.parametrize("command", ["score", "features export"])
def test_an_unusable_ids_file_is_one_line_and_exit_2(tmp_path, command, name, content, message):
    ids = tmp_path / name
    ids.write_bytes(content)
    output = tmp_path / "out.csv"
    args = [*command.split(), "--customers", str(ids), "--output", str(output)]
    if command == "features export":
        args += ["--as-of", "2024-01-01"]
    result = run_cli(*args, database_url=f"sqlite:///{tmp_path / 'p.db'}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"--customers: {ids}: {message}" in " ".join(result.stderr.split())
    assert not output.exists()


def test_a_nested_ids_column_is_refused(tmp_path):
    ids = tmp_path / "nested.parquet"
    pl.DataFrame({"customer_id": [["A", "B"]]}).write_parquet(ids)
    result = run_cli(
        "score",
        "--customers",
        str(ids),
        "--output",
        str(tmp_path / "o.csv"),
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
    )
    assert result.returncode == 2 and "customer_id must be text or numbers" in result.stderr
