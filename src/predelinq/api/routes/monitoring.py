"""Monitoring reads, behind the read token: ``/predictions``, a customer's logged scores."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from predelinq.api.deps import AUTH_RESPONSES, Reader, State
from predelinq.api.schemas import LoggedPrediction
from predelinq.monitoring.predictions import customer_predictions

router = APIRouter(tags=["monitoring"], dependencies=[Reader], responses=AUTH_RESPONSES)
MAX_PREDICTIONS = 1000


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
