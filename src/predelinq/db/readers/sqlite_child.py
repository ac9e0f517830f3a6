"""The large SQLite read of ``read_inputs``, in a child process of its own.

The read runs ADBC's SQLite driver, which carries its own copy of the SQLite library: two
copies in one process break SQLite's POSIX file locks (see ``inputs.py``), so it never runs in
the caller's process. The child is this file run as a script (``python -P sqlite_child.py
DIRECTORY``), not a ``multiprocessing`` worker: a worker re-imports the caller's ``__main__``,
and a script or notebook that called the library without ``if __name__ == "__main__":``
called it again in each worker, which started a worker of its own, forever. The file imports
nothing of predelinq but its error base, only the standard library, pyarrow and the driver.

Parent and child talk through files in a temporary directory: ``request.json`` and
``selection.arrow`` in; one Arrow IPC file per query out, or ``error.txt``, which the parent
raises as ``SQLiteReadError``. The child exits when its parent does (its standard input, a
pipe from the parent, closes).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa

from predelinq.errors import PredelinqError  # imports nothing

SELECTION_FILE = "selection.arrow"
REQUEST_FILE = "request.json"
ERROR_FILE = "error.txt"
STDERR_FILE = "stderr.txt"
BUSY_TIMEOUT_MS = 30_000  # parallel readers each create a temporary table: wait out each other


class SQLiteReadError(PredelinqError, sqlite3.OperationalError):
    """The read in the child process failed; the message says why (the child's error)."""


def read(
    database: str,
    selection: pa.Table,
    queries: Mapping[str, str],
    schemas: Mapping[str, pa.Schema],
    *,
    table: str,
    parts: int,
) -> dict[str, pa.Table]:
    """Each query's rows as Arrow, typed as ``schemas``, read over ``parts`` connections in
    a child process; ``selection`` is there as the temporary table ``table``."""
    with tempfile.TemporaryDirectory(prefix="predelinq-read-") as name:
        directory = Path(name)
        _write_arrow(directory / SELECTION_FILE, selection)
        request = {
            "database": database,
            "table": table,
            "parts": parts,
            "queries": dict(queries),
            "schemas": {
                query: base64.b64encode(schemas[query].serialize().to_pybytes()).decode()
                for query in queries
            },
        }
        (directory / REQUEST_FILE).write_text(json.dumps(request), encoding="utf-8")
        _run_child(directory, database)
        # memory-mapped: the tables stay valid after the files are removed (Linux, macOS)
        return {
            query: pa.ipc.open_file(pa.memory_map(str(directory / f"{query}.arrow"))).read_all()
            for query in queries
        }


def _run_child(directory: Path, database: str) -> None:
    """This file as a script, on the same interpreter and ``sys.path`` as the caller; raises
    ``SQLiteReadError`` when it fails. ``-P``: the script's folder is not put on the path."""
    if not sys.executable:
        raise SQLiteReadError("cannot start the SQLite read: sys.executable is not set")
    command = [sys.executable, "-P", str(Path(__file__).resolve()), str(directory)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    with (directory / STDERR_FILE).open("wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        try:
            returncode = process.wait()
        finally:  # interrupted (Ctrl-C): the child goes too
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdin:  # the child's cue that the parent is gone, should it still run
                process.stdin.close()
    if returncode != 0:
        raise SQLiteReadError(f"reading {database} failed: {_child_failure(directory, returncode)}")


def _child_failure(directory: Path, returncode: int) -> str:
    error = directory / ERROR_FILE
    if error.exists():
        return error.read_text(encoding="utf-8").strip()
    if returncode < 0:
        return f"the reading process was stopped by signal {-returncode}"
    lines = (directory / STDERR_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return f"the reading process exited with code {returncode}" + (f": {last}" if last else "")


def split(selection: pa.Table, parts: int) -> list[pa.Table]:
    """The selection in ``parts`` (at most one per customer) contiguous slices."""
    parts = max(1, min(parts, selection.num_rows))
    size = max(1, -(-selection.num_rows // parts))
    return [selection.slice(start, size) for start in range(0, selection.num_rows, size)] or [
        selection
    ]


def _write_arrow(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


# --- in the child ----------------------------------------------------------------------------


def main(directory: Path) -> int:
    threading.Thread(target=_exit_with_parent, args=(directory,), daemon=True).start()
    try:
        _read_to_files(directory)
    except Exception as error:  # the parent raises it; the first line says it all
        message = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {message[0] if message else ''}"
        (directory / ERROR_FILE).write_text(reason, encoding="utf-8")
        return 1
    return 0


def _exit_with_parent(directory: Path) -> None:
    """Standard input is a pipe from the parent: it ends when the parent closes it or dies
    (then nobody removes the directory but the child). Read unbuffered: a thread blocked in
    ``sys.stdin`` would stop the interpreter's exit."""
    while os.read(0, 4096):
        pass
    shutil.rmtree(directory, ignore_errors=True)
    os._exit(1)


def _read_to_files(directory: Path) -> None:
    import adbc_driver_sqlite.dbapi as sqlite_adbc

    request = json.loads((directory / REQUEST_FILE).read_text(encoding="utf-8"))
    schemas = {
        query: pa.ipc.read_schema(pa.py_buffer(base64.b64decode(schema)))
        for query, schema in request["schemas"].items()
    }
    selection = pa.ipc.open_file(pa.memory_map(str(directory / SELECTION_FILE))).read_all()
    groups = split(selection, request["parts"])
    with ExitStack() as stack:
        connections = [
            stack.enter_context(sqlite_adbc.connect(request["database"])) for _ in groups
        ]
        for connection in connections:
            connection.cursor().execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

        def read_group(connection: Any, group: pa.Table) -> dict[str, pa.Table]:
            return _read_group(connection, group, request["table"], request["queries"], schemas)

        with ThreadPoolExecutor(len(groups)) as pool:  # ADBC fetches release the GIL
            results = list(pool.map(read_group, connections, groups))
    for query in request["queries"]:
        _write_arrow(
            directory / f"{query}.arrow", pa.concat_tables([result[query] for result in results])
        )


def _read_group(
    connection: Any,
    selection: pa.Table,
    table: str,
    queries: Mapping[str, str],
    schemas: Mapping[str, pa.Schema],
) -> dict[str, pa.Table]:
    cursor = connection.cursor()
    cursor.adbc_ingest(table, selection, mode="create", temporary=True)
    tables = {}
    for query, sql in queries.items():
        cursor.execute(f"{_typed_row(schemas[query])} UNION ALL {sql}")
        tables[query] = _without_typed_row(cursor.fetch_arrow_table(), schemas[query])
    cursor.execute(f"DROP TABLE {table}")
    return tables


# ADBC's SQLite driver infers each column's type from the values of the first batch (1,024
# rows) and fails on a later batch that disagrees ("expected INT64 but got DOUBLE"): a column
# NULL on the first 1,024 rows and set later (balance_after, stored only since exports carry
# it) would stop the read. Its queries start with one row of typed values and a NULL
# customer_id, which no stored row has; the row is dropped after the fetch.
_TYPED_VALUES = {pa.string(): "''", pa.float64(): "0.0", pa.int64(): "0"}


def _typed_row(schema: pa.Schema) -> str:
    values = [
        f"{'NULL' if field.name == 'customer_id' else _TYPED_VALUES[field.type]} AS {field.name}"
        for field in schema
    ]
    return f"SELECT {', '.join(values)}"


def _without_typed_row(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.num_rows == 0 or table.column("customer_id")[0].is_valid:
        raise RuntimeError("the SQLite read did not return its typed first row first")
    return table.slice(1).cast(schema)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
