"""Shared dependencies: the app's state, the served champion, and bearer-token checks.

They are ``async`` because they never block: FastAPI would run a plain ``def`` dependency in
its thread pool, one thread hop per dependency per request."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import Engine

from predelinq.api.schemas import ErrorResponse
from predelinq.api.telemetry import Telemetry
from predelinq.config import Settings
from predelinq.features.declarations import FeatureSet
from predelinq.modeling.registry import Champion
from predelinq.monitoring.history import DriftHistory
from predelinq.monitoring.report import MonitorReport, ReportCache
from predelinq.serving.batcher import PredictionBatcher
from predelinq.serving.champion import ChampionCache

bearer = HTTPBearer(auto_error=False)


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    champion: ChampionCache
    telemetry: Telemetry
    batcher: PredictionBatcher
    features: FeatureSet
    monitoring: ReportCache[MonitorReport]
    drift_history: ReportCache[DriftHistory]


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.predelinq
    return state


State = Annotated[AppState, Depends(get_state)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _matches(expected: SecretStr, credentials: HTTPAuthorizationCredentials) -> bool:
    given = credentials.credentials.encode()
    return hmac.compare_digest(given, expected.get_secret_value().encode())


def _check_token(
    expected: SecretStr | None, credentials: HTTPAuthorizationCredentials | None
) -> None:
    if expected is None:
        return
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not _matches(expected, credentials):
        raise HTTPException(403, "wrong token")


async def require_admin(state: State, credentials: Credentials) -> None:
    """Trigger, promote and rollback: the admin token (open only in development mode)."""
    _check_token(state.settings.admin_token, credentials)


async def require_reader(state: State, credentials: Credentials) -> None:
    """Scoring and reads: the read token when one is set (the admin token also works)."""
    if state.settings.read_token is None:
        return
    admin = state.settings.admin_token
    if credentials and admin and _matches(admin, credentials):
        return
    _check_token(state.settings.read_token, credentials)


async def served_model(state: State) -> Champion:
    model = state.champion.current
    if model is None:
        raise HTTPException(503, state.champion.unavailable_reason())
    return model


# In the OpenAPI schema of every route behind a token.
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Bearer token required and missing"},
    403: {"model": ErrorResponse, "description": "Wrong bearer token"},
}
Admin = Depends(require_admin)
Reader = Depends(require_reader)
Model = Annotated[Champion, Depends(served_model)]
