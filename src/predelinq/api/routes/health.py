"""/health, /ready and /metrics.

/health and /ready run on the event loop, never in the thread pool: when every pooled
thread is busy, a probe still answers at once. Scoring never runs on
the loop (serving/batcher.py). /metrics needs the read token when one is set."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from predelinq.api.deps import AUTH_RESPONSES, Reader, State
from predelinq.api.schemas import ErrorResponse, Health
from predelinq.retraining.status import new_customer_count

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
async def health(state: State) -> Health:
    """The process is up; which model version it serves (null before the first)."""
    model = state.champion.current
    return Health(status="ok", model_version=model.version if model else None)


@router.get("/ready", response_model=Health, responses={503: {"model": ErrorResponse}})
async def ready(state: State, response: Response) -> Health:
    """503 until a model is loaded, so load balancers wait for it."""
    model = state.champion.current
    if model is None:
        response.status_code = 503
        return Health(status="no model loaded", model_version=None)
    return Health(status="ready", model_version=model.version)


@router.get("/metrics", response_class=Response, dependencies=[Reader], responses=AUTH_RESPONSES)
def metrics(state: State) -> Response:
    """Prometheus metrics. The new-customer gauge is counted at each scrape (one indexed
    query), so it is current without a status call."""
    with state.engine.connect() as connection:
        state.telemetry.new_customers.set(new_customer_count(connection))
    return Response(state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
