"""/predict: risk scores with the served champion, single and batch (vectorised)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import xgboost
from fastapi import APIRouter, HTTPException

from predelinq.api.deps import AUTH_RESPONSES, Model, Reader, State
from predelinq.api.schemas import (
    BatchPrediction,
    BatchPredictRequest,
    BatchPredictResponse,
    Contribution,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
)
from predelinq.features import FEATURE_NAMES
from predelinq.features.at_date import feature_matrix_at_date
from predelinq.features.read import read_at_date

router = APIRouter(tags=["scoring"], dependencies=[Reader], responses=AUTH_RESPONSES)
TOP_FEATURES = 5


def _band(score: float, bands: tuple[float, float]) -> str:
    return "low" if score < bands[0] else "medium" if score < bands[1] else "high"


def _features(state, ids: list[str], as_of: date) -> tuple[list[str], np.ndarray]:
    """The known customers among ``ids`` (in order) and their feature matrix at ``as_of``."""
    with state.engine.connect() as connection:
        inputs = read_at_date(connection, state.settings.database_url, ids, as_of)
    known = set(inputs["customers"].column("customer_id").to_pylist())
    ids = [c for c in ids if c in known]
    return ids, feature_matrix_at_date(ids, as_of, inputs)


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def predict(body: PredictRequest, state: State, model: Model) -> PredictResponse:
    """Risk score, band and the features that pushed it most, for one customer."""
    # A few milliseconds of CPU, run on the event loop: in the thread pool the requests only
    # contended for the GIL (measured 235 requests/s with one thread, 122 with eight).
    as_of = body.as_of or datetime.now(UTC).date()
    ids, X = _features(state, [body.customer_id], as_of)
    if not ids:
        raise HTTPException(404, f"unknown customer {body.customer_id!r}")
    score = float(model.booster.inplace_predict(X)[0])  # as /predict/batch, to the last bit
    one_row = xgboost.DMatrix(
        X, feature_names=list(FEATURE_NAMES), missing=np.nan, nthread=state.settings.threads or 1
    )  # the default, every core, made OpenMP threads wait on each other under load
    contributions = model.booster.predict(one_row, pred_contribs=True)[0][:-1]
    top = np.argsort(-np.abs(contributions))[:TOP_FEATURES]
    state.telemetry.predictions.labels(model.version).inc()
    return PredictResponse(
        customer_id=body.customer_id,
        as_of=as_of,
        risk_score=score,
        risk_band=_band(score, state.settings.risk_bands),
        model_version=model.version,
        top_features=[
            Contribution(
                feature=FEATURE_NAMES[i],
                contribution=float(contributions[i]),
                value=None if np.isnan(X[0, i]) else float(X[0, i]),
            )
            for i in top
        ],
    )


@router.post(
    "/predict/batch", response_model=BatchPredictResponse, responses={503: {"model": ErrorResponse}}
)
def predict_batch(body: BatchPredictRequest, state: State, model: Model) -> BatchPredictResponse:
    """Scores for many customers in one vectorised pass; unknown ids are listed, not scored."""
    as_of = body.as_of or datetime.now(UTC).date()
    requested = list(dict.fromkeys(body.customer_ids))
    ids, X = _features(state, sorted(requested), as_of)  # scored in customer id order
    scores = model.booster.inplace_predict(X) if ids else np.array([])
    state.telemetry.predictions.labels(model.version).inc(len(ids))
    bands = state.settings.risk_bands
    known = set(ids)
    return BatchPredictResponse(
        as_of=as_of,
        model_version=model.version,
        predictions=[
            BatchPrediction(customer_id=c, risk_score=s, risk_band=_band(s, bands))
            for c, s in zip(ids, scores.tolist(), strict=True)
        ],
        unknown_customer_ids=[c for c in requested if c not in known],
    )
