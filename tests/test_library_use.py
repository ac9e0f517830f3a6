"""The library's public functions called as users call them, on a database large enough for the
large-read path (5,000 customers and more; on SQLite a child process reads).

- from a plain script without ``if __name__ == "__main__":``;
- from a notebook: ``python -`` (the script on standard input) and a cell run the way IPython
  runs one, ``exec`` in a ``__main__`` module without ``__file__``;
- under a real uvicorn server (``python -m uvicorn predelinq.api:app``).

The SQLite read once ran in a ``multiprocessing`` "spawn" worker, which re-imports the
caller's ``__main__``: a plain script called the library again in the worker, which started
a worker of its own, forever (it hung). Each run here has a timeout and fails the test if it
hangs. A read that fails in the child must raise in the caller, not hang.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest

from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.db.readers import read_inputs
from predelinq.ingest import ingest_files
from support.databases import BACKENDS, postgres_schema
from support.http import free_port
from support.synthetic import write_synthetic

CUSTOMERS = 6_000
LARGE_READ = Settings.model_fields["large_read_customers"].default  # from here: a child
AS_OF = "2024-10-01"
TOKEN = "test-admin-token"
TIMEOUT = 300  # seconds for one script; a hang fails the test after it

# A cell as IPython runs it: compiled and exec'd in a fresh ``__main__`` without ``__file__``.
CELL_RUNNER = """
import sys, types
main = types.ModuleType("__main__")
sys.modules["__main__"] = main
source = open(sys.argv[1], encoding="utf-8").read()
exec(compile(source, "<ipython-input-1>", "exec"), main.__dict__)
"""

# The scripts read what they need from the environment (see _run): no main guard anywhere.
COMPUTE_FEATURES = """
import json, os
import polars as pl
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.features import compute_features

observations = pl.read_parquet(os.environ["OBSERVATIONS"])
settings = Settings(database_url=os.environ["DATABASE_URL"], threads=2)
features = compute_features(open_database(settings), observations, settings=settings)
print(json.dumps({"rows": features.height, "columns": features.width}))
"""

READ_INPUTS = """
import json, os
import polars as pl
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.features import read_inputs

observations = pl.read_parquet(os.environ["OBSERVATIONS"])
settings = Settings(database_url=os.environ["DATABASE_URL"])
tables = read_inputs(open_database(settings), observations, settings)
print(json.dumps({name: table.num_rows for name, table in tables.items()}))
"""

RETRAIN = """
import json, os
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.retraining.run import retrain

settings = Settings(
    database_url=os.environ["DATABASE_URL"], model_dir=os.environ["MODEL_DIR"], threads=2
)
result = retrain(open_database(settings), settings, max_customers="all", seed=7)
print(json.dumps({
    "status": result.status, "error": result.error, "customers": result.customers_trained,
    "version": result.model_version, "promoted": result.promoted,
}))
"""


@dataclass
class Lender:
    backend: str
    url: str
    directory: Path
    observations: Path  # Parquet: customer_id, observation_date (every label)

    @property
    def model_dir(self) -> Path:
        return self.directory / "models"


# --- running a script as a user does -------------------------------------------------------


def _environment(**extra: str) -> dict[str, str]:
    """The test's environment without predelinq's settings, plus ``extra``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREDELINQ_") and key != "DATABASE_URL"
    }
    return {**inherited, **extra}


def _run(
    source: str, how: str, directory: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """``source`` run with this interpreter as a script file, on standard input
    (``python -``) or as a notebook cell; killed with its process group after ``TIMEOUT``."""
    script = directory / f"script_{uuid.uuid4().hex[:8]}.py"
    script.write_text(source, encoding="utf-8")
    commands = {
        "script": [sys.executable, str(script)],
        "stdin": [sys.executable, "-"],
        "cell": [sys.executable, "-c", CELL_RUNNER, str(script)],
    }
    process = subprocess.Popen(
        commands[how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=directory,  # no predelinq.toml of the repository is read
        env=env,
        start_new_session=True,  # its own process group: a hung run is killed whole
    )
    try:
        stdout, stderr = process.communicate(source if how == "stdin" else "", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{how} hung for {TIMEOUT} s\nstderr (end):\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _result(completed: subprocess.CompletedProcess) -> dict:
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr[-3000:]}"
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the databases ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """6,000 synthetic customers with every sixth transaction (a quicker ingest); every label."""
    synthetic = write_synthetic(tmp_path_factory.mktemp("files"), customers=CUSTOMERS, seed=11)
    paths = synthetic.files
    synthetic.data.transactions.gather_every(6).write_parquet(paths["transactions"])
    return paths


@pytest.fixture(scope="module", params=BACKENDS)
def lender(request, files, tmp_path_factory) -> Iterator[Lender]:
    directory = tmp_path_factory.mktemp(request.param)
    observations = directory / "observations.parquet"
    labels = pl.read_parquet(files["labels"], columns=["customer_id", "observation_date"])
    labels.write_parquet(observations)
    assert labels["customer_id"].n_unique() >= LARGE_READ  # the large read
    if request.param == "sqlite":
        yield _ingested(
            Lender("sqlite", f"sqlite:///{directory / 'db.sqlite'}", directory, observations), files
        )
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield _ingested(Lender("postgres", url, directory, observations), files)


def _ingested(lender: Lender, files: dict[str, Path]) -> Lender:
    engine = open_database(Settings(database_url=lender.url))
    try:
        ingest_files(engine, files)
    finally:
        engine.dispose()
    return lender


def _env(lender: Lender) -> dict[str, str]:
    return _environment(
        DATABASE_URL=lender.url,
        OBSERVATIONS=str(lender.observations),
        MODEL_DIR=str(lender.model_dir),
    )


# --- scripts and notebooks -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["script", "stdin", "cell"])
def test_compute_features_from_a_script_or_notebook(lender, how):
    got = _result(_run(COMPUTE_FEATURES, how, lender.directory, _env(lender)))

    assert got["rows"] == pl.read_parquet(lender.observations).height
    assert got["columns"] > 2  # customer_id, observation_date and features


@pytest.mark.parametrize("how", ["script", "stdin", "cell"])
def test_read_inputs_from_a_script_or_notebook(lender, how):
    observations = pl.read_parquet(lender.observations)
    settings = Settings(database_url=lender.url)
    engine = open_database(settings)
    try:  # here, under pytest's guarded __main__
        expected = read_inputs(engine, observations, settings)
    finally:
        engine.dispose()

    got = _result(_run(READ_INPUTS, how, lender.directory, _env(lender)))

    assert got == {name: table.num_rows for name, table in expected.items()}
    assert got["customers"] >= LARGE_READ and got["transactions"] > 0


@pytest.fixture(scope="module")
def retrained(lender) -> dict:
    """A retrain on every customer from a plain script: the first model, the champion."""
    return _result(_run(RETRAIN, "script", lender.directory, _env(lender)))


def test_retrain_from_a_plain_script(retrained):
    assert retrained["status"] == "success", retrained
    assert retrained["customers"] >= LARGE_READ
    assert retrained["promoted"] and retrained["version"]


# --- a read that fails in the child process ------------------------------------------------

FAILING_READ = """
import os
from datetime import date
import polars as pl
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.features import read_inputs

ids = [f"C{k}" for k in range(int(os.environ["CUSTOMERS"]))]
observations = pl.DataFrame({"customer_id": ids}).with_columns(
    observation_date=pl.lit(date(2024, 10, 1))
)
settings = Settings(database_url=os.environ["DATABASE_URL"])
read_inputs(open_database(settings, migrate=False), observations, settings)
"""


def test_a_corrupt_sqlite_database_raises_in_the_script(tmp_path):
    (tmp_path / "corrupt.db").write_bytes(b"not a database, " * 4096)
    env = _environment(
        DATABASE_URL=f"sqlite:///{tmp_path / 'corrupt.db'}",
        CUSTOMERS=str(LARGE_READ),
    )

    completed = _run(FAILING_READ, "script", tmp_path, env)

    assert completed.returncode == 1, completed.stderr[-3000:]
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("predelinq.db.readers.sqlite_child.SQLiteReadError: reading ")
    assert "file is not a database" in last, last


@pytest.fixture
def locked_database(tmp_path) -> Iterator[Path]:
    """A database another connection holds an exclusive lock on (rollback journal, so
    readers wait too) until the test ends."""
    path = tmp_path / "locked.db"
    open_database(Settings(database_url=f"sqlite:///{path}")).dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    yield path
    holder.execute("ROLLBACK")
    holder.close()


def test_a_locked_sqlite_database_raises_in_the_script(locked_database, tmp_path):
    """The child gives up after SQLite's busy timeout and the script gets the error."""
    env = _environment(DATABASE_URL=f"sqlite:///{locked_database}", CUSTOMERS=str(LARGE_READ))

    completed = _run(FAILING_READ, "script", tmp_path, env)

    assert completed.returncode == 1, completed.stderr[-3000:]
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("predelinq.db.readers.sqlite_child.SQLiteReadError: reading ")
    assert "database is locked" in last, last


def test_the_reading_process_ends_with_the_script(locked_database, tmp_path):
    """A script killed while its read waits out a lock: the reading process ends as well, long
    before the busy timeout (30 s), and removes its files."""
    env = _environment(DATABASE_URL=f"sqlite:///{locked_database}", CUSTOMERS=str(LARGE_READ))
    script = tmp_path / "killed.py"
    script.write_text(FAILING_READ, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env)
    try:
        child, directory = _reading_child(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the reading process outlived the script"
        assert not directory.exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _reading_child(pid: int) -> tuple[int, Path]:
    """The pid and directory of ``pid``'s reading process, once it has started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):  # ended meanwhile
                continue
            if ppid == pid and any(part.endswith(b"sqlite_child.py") for part in command):
                return int(entry.name), Path(command[-2].decode())
        time.sleep(0.05)
    pytest.fail("the script started no reading process within 60 s")


def _running(pid: int) -> bool:
    """Alive and not a zombie (ended, waiting for whoever adopted it to reap it)."""
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- under a real uvicorn server --------------------------------------------------------------


def _children_cpu_ticks(pid: int) -> int:
    """CPU time (clock ticks) of the process's ended children: 0 if it started none."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])  # cutime, cstime (fields 16 and 17 of stat)


def test_predict_batch_under_uvicorn(lender, retrained):
    """5,000 ids in one ``/predict/batch`` are answered, and the server starts no process."""
    port = free_port()
    env = _environment(
        DATABASE_URL=lender.url,
        PREDELINQ_MODEL_DIR=str(lender.model_dir),
        PREDELINQ_ADMIN_TOKEN=TOKEN,
        PREDELINQ_THREADS="2",
        PREDELINQ_LARGE_READ_CUSTOMERS="1",  # a bulk read would start a child process
    )
    command = [sys.executable, "-m", "uvicorn", "predelinq.api:app", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        cwd=lender.directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ids = pl.read_parquet(lender.observations)["customer_id"].unique().sort().to_list()[:5_000]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as client:
            _wait_until_ready(client, server)
            before = _children_cpu_ticks(server.pid)
            response = client.post("/predict/batch", json={"customer_ids": ids, "as_of": AS_OF})
            after = _children_cpu_ticks(server.pid)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)

    assert response.status_code == 200, f"{response.text[:2000]}\n{stderr[-3000:]}"
    body = response.json()
    assert len(body["predictions"]) == 5_000 and not body["unknown_customer_ids"]
    assert after == before, "the server started a process for the request"


def _wait_until_ready(client: httpx.Client, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped during start-up"
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("the server did not start within 60 s")
