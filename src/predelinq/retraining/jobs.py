"""Retrain jobs behind ``POST /retraining/trigger``: stored in the database so any worker
can report them, run in a background thread under the retraining lock.

A job left ``running`` by a server that died is ``failed`` with the error "interrupted" as
soon as someone can prove its holder gone: the next job (it holds the retraining lock, so no
other retrain runs) or a server starting while the lock is free.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from predelinq.api.deps import AppState
from predelinq.clock import utc_now
from predelinq.db.schema import retrain_jobs
from predelinq.retraining.lock import RetrainingBusyError, RetrainingLock
from predelinq.retraining.run import retrain_locked

log = logging.getLogger("predelinq.api")


class JobConflictError(Exception):
    def __init__(self, running_job_id: str | None):
        self.running_job_id = running_job_id
        where = f"job {running_job_id}" if running_job_id else "a retrain started outside the API"
        super().__init__(f"a retrain is already running ({where})")


def start_job(
    state: AppState, *, reason: str, actor: str, force: bool
) -> tuple[str, threading.Thread]:
    """Take the retraining lock now (or raise ``JobConflictError``), then train in a thread."""
    lock = RetrainingLock(state.engine)
    try:
        lock.acquire()
    except RetrainingBusyError as error:
        raise JobConflictError(_running_job_soon(state.engine)) from error
    job_id = str(uuid.uuid4())
    now = utc_now()
    with state.engine.begin() as connection:
        _fail_interrupted(connection)
        connection.execute(
            insert(retrain_jobs).values(
                job_id=job_id,
                status="running",
                created_at=now,
                started_at=now,
                reason=reason,
                actor=actor,
            )
        )
    thread = threading.Thread(
        target=_run, args=(state, job_id, lock, reason, actor, force), name=f"retrain-{job_id}"
    )
    thread.start()
    return job_id, thread


def _run(
    state: AppState, job_id: str, lock: RetrainingLock, reason: str, actor: str, force: bool
) -> None:
    started = time.perf_counter()
    values: dict[str, Any]
    try:
        result = retrain_locked(
            state.engine, state.settings, reason=reason, actor=actor, force=force
        )
        values = {
            "status": result.status,
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
        values = {"status": "failed", "error": f"{error.__class__.__name__}: {error}"}
    finally:
        lock.release()
    with state.engine.begin() as connection:
        connection.execute(
            update(retrain_jobs)
            .where(retrain_jobs.c.job_id == job_id)
            .values(finished_at=utc_now(), **values)
        )
    state.telemetry.jobs.labels(values["status"]).inc()
    state.telemetry.job_seconds.observe(time.perf_counter() - started)
    if values.get("promoted"):
        state.champion.refresh()


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
    """Jobs still queued or running while we hold the lock: their holder is gone."""
    return connection.execute(
        update(retrain_jobs)
        .where(retrain_jobs.c.status.in_(("queued", "running")))
        .values(status="failed", error="interrupted", finished_at=utc_now())
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
        .where(retrain_jobs.c.status.in_(("queued", "running")))
        .order_by(retrain_jobs.c.created_at.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar_one_or_none()


def get_job(engine: Engine, job_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(retrain_jobs).where(retrain_jobs.c.job_id == job_id)
        ).one_or_none()
    if row is None:
        return None
    job = dict(row._mapping)
    result = job.pop("result") or {}
    for key in ("created_at", "started_at", "finished_at"):
        job[key] = job[key].isoformat(timespec="seconds") if job[key] else None
    job["metrics"] = result.get("metrics")
    job["response"] = result
    return job
