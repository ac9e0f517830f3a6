"""Monitoring reads, behind the read token: ``/monitoring``, the report of ``predelinq
monitor --json`` (computed in the background and cached), and ``/predictions``, a customer's
logged scores."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from predelinq.api.deps import AUTH_RESPONSES, Reader, State
from predelinq.api.schemas import LoggedPrediction
from predelinq.monitoring.predictions import customer_predictions

router = APIRouter(tags=["monitoring"], dependencies=[Reader], responses=AUTH_RESPONSES)
MAX_PREDICTIONS = 1000
RETRY_SECONDS = 5


@router.get(
    "/monitoring",
    responses={202: {"description": "The first report is being computed: retry later."}},
)
def monitoring(state: State, response: Response) -> Any:
    """The champion's drift, realised performance and triggers as of the data's today: the
    JSON of `predelinq monitor --json`. Computed in the background and kept for
    `[monitoring] cache_seconds` or until the champion changes (the `Age` header says how old
    it is); 202 with `Retry-After` until the first one is ready."""
    served = state.champion.current
    report, age = state.monitoring.current(None if served is None else served.version)
    if report is None:
        return JSONResponse(
            {"detail": "the monitoring report is being computed; retry shortly"},
            status_code=202,
            headers={"Retry-After": str(RETRY_SECONDS)},
        )
    response.headers["Age"] = str(int(age))
    return report.as_json()


@router.get("/predictions", response_model=list[LoggedPrediction])
def predictions(
    state: State,
    customer_id: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^\x00]*$")],
    limit: Annotated[int, Query(ge=1, le=MAX_PREDICTIONS)] = 100,
) -> list[LoggedPrediction]:
    """The customer's logged scores, newest first: from /predict, /predict/batch and
    `predelinq score` (empty for a customer never scored, or with logging off)."""
    with state.engine.connect() as connection:
        rows = customer_predictions(connection, customer_id, limit)
    return [LoggedPrediction(**asdict(row)) for row in rows]
