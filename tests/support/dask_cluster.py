"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes, as a user
starts them (without nannies, so a killed worker stays dead), stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

START_SECONDS = 60


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker process: it is lost mid-task, as on a machine failure."""
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(10)


# A task no worker can run fails after this long instead of waiting for a worker forever
# (Dask's default): what an operator sets when no new worker would come (docs/scaleout.md).
NO_WORKERS_TIMEOUT = "5s"


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    settings = {
        "PYTHONUNBUFFERED": "1",
        "DASK_DISTRIBUTED__SCHEDULER__NO_WORKERS_TIMEOUT": NO_WORKERS_TIMEOUT,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | settings,
        )


@contextmanager
def start_cluster(directory: Path, *, workers: int) -> Iterator[DaskProcesses]:
    """A scheduler on a free local port and ``workers`` single-threaded workers; the block
    runs once every worker has joined."""
    directory.mkdir(parents=True, exist_ok=True)
    scheduler_file = directory / "scheduler.json"
    log = directory / "cluster.log"
    scheduler = _dask(
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-dashboard",
        "--scheduler-file",
        str(scheduler_file),
        log=log,
    )
    cluster = DaskProcesses("", scheduler)
    try:
        cluster.address = _wait_for_address(scheduler_file, scheduler, log)
        for k in range(workers):
            cluster.workers.append(
                _dask(
                    "worker",
                    cluster.address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--memory-limit",
                    "4GiB",
                    "--name",
                    f"worker-{k}",
                    "--local-directory",
                    str(directory / f"worker-{k}"),
                    log=log,
                )
            )
        _wait_for_workers(cluster.address, workers, log)
        yield cluster
    finally:
        for process in [*cluster.workers, scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*cluster.workers, scheduler]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_address(scheduler_file: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited: {log.read_text()}")
        if scheduler_file.exists():
            try:
                return str(json.loads(scheduler_file.read_text())["address"])
            except (json.JSONDecodeError, KeyError):
                pass  # still being written
        time.sleep(0.1)
    raise RuntimeError(f"dask scheduler did not start: {log.read_text()}")


def _wait_for_workers(address: str, count: int, log: Path) -> None:
    from distributed import Client

    with Client(address, timeout=START_SECONDS) as client:
        try:
            client.wait_for_workers(count, timeout=START_SECONDS)
        except TimeoutError as error:
            raise RuntimeError(f"dask workers did not join: {log.read_text()}") from error
