"""Retrain jobs (the API's ``POST /retraining/trigger``): stored in the database so any worker
can report them, run in a background thread under the retraining lock.

``start_job`` takes the lock in the caller's thread, so a second trigger is refused at once
(``JobConflictError``) rather than queued, and stores the job as ``running``; the job's thread
gives the lock back (``RetrainingLock.release``) when the retrain ends, whatever its end.

A job left ``running`` by a server that died is ``failed`` with the error "interrupted" as
soon as someone can prove its holder gone: the next job (it holds the retraining lock, so no
other retrain runs) or a server starting while the lock is free.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from predelinq.clock import utc_now
from predelinq.config import Settings
from predelinq.db.schema import retrain_jobs
from predelinq.errors import PredelinqError
from predelinq.retraining.lock import RetrainingBusyError, RetrainingLock
from predelinq.retraining.run import retrain_locked
from predelinq.statuses import JobStatus

log = logging.getLogger(__name__)


class JobConflictError(PredelinqError):
    def __init__(self, running_job_id: str | None):
        self.running_job_id = running_job_id
        where = f"job {running_job_id}" if running_job_id else "a retrain started outside the API"
        super().__init__(f"a retrain is already running ({where})")


@dataclass(frozen=True)
class FinishedJob:
    """What ``start_job``'s ``on_finish`` is told when a job ends."""

    job_id: str
    status: JobStatus
    promoted: bool
    seconds: float


@dataclass(frozen=True)
class Job:
    """A stored job, as ``GET /retraining/jobs/{id}`` reports it."""

    job_id: str
    status: JobStatus
    created_at: datetime  # naive UTC
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None
    actor: str
    model_version: str | None
    promoted: bool
    error: str | None
    response: dict[str, Any]  # once finished: the seed's trigger response, metrics, the gate

    @property
    def metrics(self) -> dict[str, float | None] | None:
        metrics: dict[str, float | None] | None = self.response.get("metrics")
        return metrics


def start_job(
    engine: Engine,
    settings: Settings,
    *,
    reason: str,
    actor: str,
    force: bool,
    on_finish: Callable[[FinishedJob], None] = lambda job: None,
) -> tuple[str, threading.Thread]:
    """Take the retraining lock now (or raise ``JobConflictError``), then train in a thread,
    which calls ``on_finish`` once the job's end is stored."""
    lock = RetrainingLock(engine)
    try:
        lock.acquire()
    except RetrainingBusyError as error:
        raise JobConflictError(_running_job_soon(engine)) from error
    job_id = str(uuid.uuid4())
    now = utc_now()
    try:
        with engine.begin() as connection:
            _fail_interrupted(connection)
            connection.execute(
                insert(retrain_jobs).values(
                    job_id=job_id,
                    status=JobStatus.RUNNING.value,
                    created_at=now,
                    started_at=now,
                    reason=reason,
                    actor=actor,
                )
            )
    except BaseException:
        lock.release()
        raise
    thread = threading.Thread(
        target=_run,
        args=(engine, settings, job_id, lock, reason, actor, force, on_finish),
        name=f"retrain-{job_id}",
    )
    thread.start()
    return job_id, thread


def _run(
    engine: Engine,
    settings: Settings,
    job_id: str,
    lock: RetrainingLock,
    reason: str,
    actor: str,
    force: bool,
    on_finish: Callable[[FinishedJob], None],
) -> None:
    started = time.perf_counter()
    values: dict[str, Any]
    try:
        result = retrain_locked(engine, settings, reason=reason, actor=actor, force=force)
        values = {
            "status": JobStatus(result.status).value,
            "model_version": result.model_version,
            "promoted": result.promoted,
            "error": result.error,
            "result": {
                **result.as_response(),
                "metrics": result.metrics,
                "metrics_std": result.metrics_std,
                "metrics_source": result.metrics_source,
                "gate": result.gate,
                "gate_evidence": result.gate_evidence,
            },
        }
    except Exception as error:  # the job must end in a state a client can read
        log.exception("retrain job %s failed", job_id)
        values = {"status": JobStatus.FAILED.value, "error": f"{error.__class__.__name__}: {error}"}
    finally:
        lock.release()
    with engine.begin() as connection:
        connection.execute(
            update(retrain_jobs)
            .where(retrain_jobs.c.job_id == job_id)
            .values(finished_at=utc_now(), **values)
        )
    on_finish(
        FinishedJob(
            job_id,
            JobStatus(values["status"]),
            bool(values.get("promoted")),
            time.perf_counter() - started,
        )
    )


def fail_interrupted_jobs(engine: Engine) -> int:
    """At server start: if no retrain holds the lock, every job still ``running`` lost its
    server; mark them failed. Returns how many."""
    lock = RetrainingLock(engine)
    try:
        lock.acquire()
    except RetrainingBusyError:
        return 0  # a retrain runs somewhere: its job may be alive
    try:
        with engine.begin() as connection:
            return _fail_interrupted(connection)
    finally:
        lock.release()


def _fail_interrupted(connection: Connection) -> int:
    """Jobs still running while we hold the lock: their holder is gone."""
    return connection.execute(
        update(retrain_jobs)
        .where(retrain_jobs.c.status == JobStatus.RUNNING.value)
        .values(status=JobStatus.FAILED.value, error="interrupted", finished_at=utc_now())
    ).rowcount


def _running_job_soon(engine: Engine, *, attempts: int = 20) -> str | None:
    """The job holding the lock; its row may land a moment after it took the lock."""
    for _ in range(attempts):
        job_id = running_job(engine)
        if job_id is not None:
            return job_id
        time.sleep(0.05)
    return None  # the lock is held outside the API (a CLI or scheduled retrain)


def running_job(engine: Engine) -> str | None:
    query = (
        select(retrain_jobs.c.job_id)
        .where(retrain_jobs.c.status == JobStatus.RUNNING.value)
        .order_by(retrain_jobs.c.created_at.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        job_id: str | None = connection.execute(query).scalar_one_or_none()
        return job_id


def get_job(engine: Engine, job_id: str) -> Job | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(retrain_jobs).where(retrain_jobs.c.job_id == job_id)
        ).one_or_none()
    if row is None:
        return None
    return Job(
        job_id=row.job_id,
        status=JobStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        reason=row.reason,
        actor=row.actor,
        model_version=row.model_version,
        promoted=bool(row.promoted),
        error=row.error,
        response=row.result or {},
    )
