"""The retraining lock dies with its holder; API jobs whose server died end as failed;
migrations started at once run once. Real processes, real signals, both databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from predelinq.config import Settings
from predelinq.db import open_database, schema
from predelinq.db.engine import create_db_engine
from predelinq.db.migrations import current_revision, head_revision, upgrade_to_head
from predelinq.retraining.lock import RetrainingBusyError, current_holder, retraining_lock
from support.databases import BACKENDS
from support.http import free_port
from support.synthetic import load_synthetic, write_synthetic

CLI = Path(sys.executable).with_name("predelinq")
TOKEN = "lock-test-token"
HOLD = """
import sys, time
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.retraining.lock import retraining_lock
engine = open_database(Settings(database_url=sys.argv[1]))
with retraining_lock(engine):
    print("held", flush=True)
    time.sleep(600)
"""


def _env(database, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDELINQ_")}
    return env | {"DATABASE_URL": database.url, **extra}


def _hold_lock(database) -> subprocess.Popen:
    """Another process that takes the retraining lock and keeps it until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, database.url], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def _lock_free_within(engine, seconds: float) -> float:
    """Seconds until the lock can be taken, failing after ``seconds``."""
    started = time.monotonic()
    while True:
        try:
            with retraining_lock(engine):
                return time.monotonic() - started
        except RetrainingBusyError:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_holder_frees_the_lock_within_seconds(database, how):
    holder = _hold_lock(database)
    try:
        busy = rf":{holder.pid}:"
        with pytest.raises(RetrainingBusyError, match=busy), retraining_lock(database.engine):
            pass
        os.kill(holder.pid, how)
        holder.wait(timeout=10)
        assert _lock_free_within(database.engine, seconds=5) < 5
    finally:
        holder.kill()
        holder.wait()
    assert current_holder(database.engine) is None


def test_a_paused_holder_keeps_the_lock(database):
    """No lease runs out under a stopped (or very long) retrain: nobody else gets in."""
    holder = _hold_lock(database)
    try:
        os.kill(holder.pid, signal.SIGSTOP)
        time.sleep(1.5)
        with pytest.raises(RetrainingBusyError), retraining_lock(database.engine):
            pass
        cli = subprocess.run(
            [str(CLI), "retrain"], env=_env(database), capture_output=True, text=True, timeout=120
        )
        assert cli.returncode == 75, cli.stderr
        assert f":{holder.pid}:" in cli.stderr
        os.kill(holder.pid, signal.SIGCONT)
    finally:
        holder.kill()
        holder.wait()


def test_status_shows_who_holds_the_lock_and_since_when(database):
    env = _env(database)
    holder = _hold_lock(database)
    try:
        shown = subprocess.run(
            [str(CLI), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        lock = json.loads(shown.stdout)["retraining_lock"]
        assert lock["holder"].split(":")[:2] == [socket.gethostname(), str(holder.pid)]
        assert lock["since"][:4].isdigit()
        text = subprocess.run(
            [str(CLI), "status"], env=env, capture_output=True, text=True, timeout=60
        ).stdout
        assert f"retrain running: {socket.gethostname()}:{holder.pid}:" in text
    finally:
        holder.kill()
        holder.wait()
    shown = subprocess.run(
        [str(CLI), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert json.loads(shown.stdout)["retraining_lock"] is None  # the dead holder is not shown


def test_the_lock_is_released_from_another_thread(database):
    """An API job takes the lock in the request and gives it back from its worker thread."""
    from predelinq.retraining.lock import RetrainingLock

    lock = RetrainingLock(database.engine)
    lock.acquire()
    released = threading.Thread(target=lock.release)
    released.start()
    released.join()
    assert _lock_free_within(database.engine, seconds=1) < 1


def test_a_job_runs_from_the_library_and_says_when_it_ends(database, tmp_path):
    """No API needed: the engine and settings in, a thread out, ``on_finish`` told the end.
    On an empty database the retrain fails at once: stored as failed, the lock given back."""
    from predelinq.retraining.jobs import (
        FinishedJob,
        JobConflictError,
        get_job,
        running_job,
        start_job,
    )
    from predelinq.statuses import JobStatus

    settings = Settings(database_url=database.url, model_dir=tmp_path / "models", threads=1)
    finished: list[FinishedJob] = []
    job_id, thread = start_job(
        database.engine,
        settings,
        reason="library",
        actor="test",
        force=False,
        on_finish=finished.append,
    )
    thread.join(timeout=120)

    (end,) = finished
    assert (end.job_id, end.status, end.promoted) == (job_id, JobStatus.FAILED, False)
    job = get_job(database.engine, job_id)
    assert job is not None and (job.status, job.actor, job.reason) == ("failed", "test", "library")
    assert job.started_at is not None and job.finished_at is not None
    assert job.error == "too few labelled rows: 0 (need at least 100)"
    assert running_job(database.engine) is None
    assert _lock_free_within(database.engine, seconds=1) < 1

    with retraining_lock(database.engine), pytest.raises(JobConflictError) as refused:
        start_job(database.engine, settings, reason="second", actor="test", force=False)
    assert refused.value.running_job_id is None  # held outside the API
    assert "retrain started outside the API" in str(refused.value)


# --- API jobs whose server died ----------------------------------------------------------


def _serve(database, model_dir: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = _env(
        database,
        PREDELINQ_MODEL_DIR=str(model_dir),
        PREDELINQ_ADMIN_TOKEN=TOKEN,
        PREDELINQ_THREADS="1",
        PREDELINQ_MAX_CUSTOMERS="all",
    )
    server = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise AssertionError("server did not start")


def _job(database, job_id: str) -> dict:
    with database.engine.connect() as connection:
        row = connection.execute(
            select(schema.retrain_jobs).where(schema.retrain_jobs.c.job_id == job_id)
        ).one()
    return dict(row._mapping)


def test_a_job_whose_server_died_becomes_failed(database, tmp_path):
    """Server A is killed mid-job. Server B, already running, fails the job when its own
    next job starts; a server starting afterwards finds nothing left running."""
    load_synthetic(database, write_synthetic(tmp_path / "synth", customers=400, seed=7))
    admin = {"Authorization": f"Bearer {TOKEN}"}
    servers = []
    try:
        a, a_url = _serve(database, tmp_path / "models", tmp_path)
        servers.append(a)
        b, b_url = _serve(database, tmp_path / "models", tmp_path)
        servers.append(b)
        accepted = httpx.post(f"{a_url}/retraining/trigger", headers=admin, timeout=30)
        assert accepted.status_code == 202, accepted.text
        orphan = accepted.json()["job_id"]
        a.kill()  # mid-retrain: the job row says running
        a.wait()
        assert _job(database, orphan)["status"] == "running"
        assert httpx.get(f"{b_url}/retraining/status").json()["running"] == orphan

        deadline = time.monotonic() + 20  # the dead holder's lock goes with its process
        while True:
            started = httpx.post(f"{b_url}/retraining/trigger", headers=admin, timeout=30)
            if started.status_code != 409:
                break
            assert time.monotonic() < deadline, started.text
            time.sleep(0.2)
        assert started.status_code == 202, started.text
        left = _job(database, orphan)
        assert (left["status"], left["error"]) == ("failed", "interrupted")
        assert httpx.get(f"{b_url}/retraining/jobs/{orphan}").json()["status"] == "failed"
    finally:
        for server in servers:
            server.kill()
            server.wait()


def _job_row_running(database, reason: str) -> str:
    """A job row as a server leaves it when it dies mid-job."""
    job_id = str(uuid.uuid4())
    with database.engine.begin() as connection:
        connection.execute(
            schema.retrain_jobs.insert().values(
                job_id=job_id,
                status="running",
                created_at=func.now(),
                started_at=func.now(),
                reason=reason,
                actor="api",
            )
        )
    return job_id


def test_a_server_start_fails_jobs_left_running(database, tmp_path):
    """The state a killed server leaves (a job row ``running``, nobody holding the lock) is
    cleaned up when a server starts."""
    job_id = _job_row_running(database, "left by a dead server")
    server, url = _serve(database, tmp_path / "models", tmp_path)
    try:
        assert httpx.get(f"{url}/retraining/status").json()["running"] is None
        job = httpx.get(f"{url}/retraining/jobs/{job_id}").json()
        assert (job["status"], job["error"]) == ("failed", "interrupted")
    finally:
        server.kill()
        server.wait()


def test_a_server_start_leaves_a_live_job_alone(database, tmp_path):
    """While a retrain holds the lock, a job marked running may be alive: leave it."""
    job_id = _job_row_running(database, "alive elsewhere")
    holder = _hold_lock(database)
    try:
        server, url = _serve(database, tmp_path / "models", tmp_path)
        try:
            assert httpx.get(f"{url}/retraining/status").json()["running"] == job_id
        finally:
            server.kill()
            server.wait()
    finally:
        holder.kill()
        holder.wait()


# --- migrations at once -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_commands_started_at_once_on_a_fresh_database_migrate_once(backend, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDELINQ_")}
    env["DATABASE_URL"] = url
    commands = [
        subprocess.Popen(
            [str(CLI), "status", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(command.communicate(timeout=120)[1], command.returncode) for command in commands]
    assert all(code == 0 for _, code in outcomes), outcomes
    engine = create_db_engine(Settings(database_url=url).sqlalchemy_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrades_in_threads_at_once_run_one_migration(backend, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    engines = [create_db_engine(Settings(database_url=url).sqlalchemy_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    ran: list[bool] = []
    failures: list[BaseException] = []

    def upgrade(engine) -> None:
        start.wait()
        try:
            ran.append(upgrade_to_head(engine))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=upgrade, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert sorted(ran) == [False, False, False, True]
    for engine in engines:
        engine.dispose()
    assert open_database(Settings(database_url=url), migrate=False) is not None
