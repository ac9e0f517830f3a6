"""/predict: risk scores with the served champion, single and batch (vectorised)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import xgboost
from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from predelinq.api.deps import Model, Reader, State
from predelinq.api.schemas import (
    BatchPrediction,
    BatchPredictRequest,
    BatchPredictResponse,
    Contribution,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
)
from predelinq.db.schema import customers
from predelinq.features import FEATURE_NAMES
from predelinq.features.export import features_as_of

router = APIRouter(tags=["scoring"], dependencies=[Reader])
TOP_FEATURES = 5


def _band(score: float, bands: tuple[float, float]) -> str:
    return "low" if score < bands[0] else "medium" if score < bands[1] else "high"


def _known(state, ids: list[str]) -> set[str]:
    with state.engine.connect() as connection:
        query = select(customers.c.customer_id).where(customers.c.customer_id.in_(ids))
        return set(connection.execute(query).scalars())


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def predict(body: PredictRequest, state: State, model: Model) -> PredictResponse:
    """Risk score, band and the features that pushed it most, for one customer."""
    as_of = body.as_of or datetime.now(UTC).date()
    if not _known(state, [body.customer_id]):
        raise HTTPException(404, f"unknown customer {body.customer_id!r}")
    X = features_as_of(state.settings, as_of, [body.customer_id]).select(FEATURE_NAMES).to_numpy()
    score = float(model.booster.inplace_predict(X)[0])
    contributions = model.booster.predict(
        xgboost.DMatrix(X, feature_names=list(FEATURE_NAMES), missing=np.nan), pred_contribs=True
    )[0][:-1]
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
    known = _known(state, requested)
    ids, scores = [c for c in requested if c in known], np.array([])
    if ids:
        features = features_as_of(state.settings, as_of, ids)  # sorted by customer id
        ids = features["customer_id"].to_list()
        scores = model.booster.inplace_predict(features.select(FEATURE_NAMES).to_numpy())
    state.telemetry.predictions.labels(model.version).inc(len(ids))
    return BatchPredictResponse(
        as_of=as_of,
        model_version=model.version,
        predictions=[
            BatchPrediction(
                customer_id=c,
                risk_score=float(s),
                risk_band=_band(float(s), state.settings.risk_bands),
            )
            for c, s in zip(ids, scores, strict=True)
        ],
        unknown_customer_ids=[c for c in requested if c not in known],
    )
