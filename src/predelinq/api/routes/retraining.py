"""/retraining: the seed's status, a non-blocking trigger, jobs and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from predelinq.api.actions import start_retrain
from predelinq.api.deps import AUTH_RESPONSES, Admin, Reader, State
from predelinq.api.schemas import (
    ErrorResponse,
    JobConflict,
    JobPublic,
    RetrainingHistoryRow,
    RetrainingStatus,
    TriggerAccepted,
    TriggerResult,
)
from predelinq.retraining.jobs import Job, JobConflictError, get_job, running_job
from predelinq.retraining.status import recent_retraining, retraining_status
from predelinq.statuses import JobStatus

router = APIRouter(prefix="/retraining", tags=["retraining"], responses=AUTH_RESPONSES)


@router.get("/status", response_model=RetrainingStatus, dependencies=[Reader])
def status(state: State) -> dict[str, Any]:
    """New customers, whether a retrain is needed and why, recent runs, and any running job."""
    result = retraining_status(state.engine, state.settings)
    state.telemetry.new_customers.set(result["new_customers_count"])
    return {**result, "running": running_job(state.engine)}


@router.post(
    "/trigger",
    status_code=202,
    response_model=TriggerAccepted | TriggerResult,
    responses={200: {"model": TriggerResult}, 409: {"model": JobConflict}},
    dependencies=[Admin],
)
def trigger(
    state: State,
    response: Response,
    wait: Annotated[
        bool, Query(description="Wait for the result (the seed's blocking form).")
    ] = False,
    force: Annotated[
        bool, Query(description="Promote even if the gate rejects the model.")
    ] = False,
    reason: Annotated[str, Query(max_length=500)] = "API trigger",
) -> TriggerAccepted | TriggerResult | JSONResponse:
    """Start a retrain in the background (202 and a job to poll), or wait for it."""
    try:
        job_id, thread = start_retrain(state, reason=reason, actor="api", force=force)
    except JobConflictError as error:
        return JSONResponse(
            {"detail": str(error), "running_job_id": error.running_job_id}, status_code=409
        )
    location = f"/retraining/jobs/{job_id}"
    if not wait:
        response.headers["Location"] = location
        return TriggerAccepted(job_id=job_id, status=JobStatus.RUNNING, location=location)
    thread.join()
    job = get_job(state.engine, job_id)
    assert job is not None  # stored before its thread started
    seed = job.response
    response.status_code = 200
    message = {
        JobStatus.SUCCESS: "Model retrained and promoted; the API serves it without a restart.",
        JobStatus.REJECTED: "Model retrained but kept out by the quality gate; the champion stays.",
    }.get(job.status, f"Retraining failed: {job.error}")
    return TriggerResult(
        status=job.status,
        message=message,
        job_id=job_id,
        customers_trained=seed.get("customers_trained"),
        samples_trained=seed.get("samples_trained"),
        auc=seed.get("auc"),
        model_version=job.model_version,
        promoted=job.promoted,
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobPublic,
    responses={404: {"model": ErrorResponse}},
    dependencies=[Reader],
)
def job(job_id: str, state: State) -> JobPublic:
    """One retrain job: its status and, once finished, its model version, metrics or error."""
    found = get_job(state.engine, job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id}")
    return _public(found)


def _public(job: Job) -> JobPublic:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat(timespec="seconds") if moment else None

    return JobPublic(
        job_id=job.job_id,
        status=job.status,
        created_at=job.created_at.isoformat(timespec="seconds"),
        started_at=when(job.started_at),
        finished_at=when(job.finished_at),
        reason=job.reason,
        model_version=job.model_version,
        promoted=job.promoted,
        metrics=job.metrics,
        error=job.error,
    )


@router.get("/history", response_model=list[RetrainingHistoryRow], dependencies=[Reader])
def history(state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[dict[str, Any]]:
    """Recent retraining runs, newest first."""
    with state.engine.connect() as connection:
        return recent_retraining(connection, limit)
