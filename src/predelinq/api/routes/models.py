"""/models: the registry, and moving the champion (admin).

Errors (``api/errors.py``): an unknown version is 404; nothing to roll back to is 409; a
version whose artifact is missing or fails verification is 500, naming the fix (the champion
stays)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from predelinq.api.actions import move
from predelinq.api.deps import AUTH_RESPONSES, Admin, AppState, Reader, State
from predelinq.api.schemas import (
    ChampionMove,
    ErrorResponse,
    ModelVersionDetail,
    ModelVersionPublic,
    RollbackRequest,
)
from predelinq.modeling.registry import ModelVersion, get_version, list_versions
from predelinq.statuses import ChampionAction

router = APIRouter(prefix="/models", tags=["models"], responses=AUTH_RESPONSES)
MOVE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    500: {"model": ErrorResponse},
}


def _public(version: ModelVersion) -> ModelVersionPublic:
    return ModelVersionPublic(
        model_version=version.version,
        created_at=version.created_at.isoformat(timespec="seconds"),
        champion=version.champion,
        auc_score=version.auc,
        threshold=version.threshold,
        sha256=version.sha256,
    )


@router.get("", response_model=list[ModelVersionPublic], dependencies=[Reader])
def models(state: State) -> list[ModelVersionPublic]:
    """Every registered version, newest first, the champion marked."""
    with state.engine.connect() as connection:
        return [_public(version) for version in list_versions(connection)]


@router.get(
    "/{version}",
    response_model=ModelVersionDetail,
    responses={404: {"model": ErrorResponse}},
    dependencies=[Reader],
)
def model(version: str, state: State) -> ModelVersionDetail:
    """One version: metrics, features, parameters, counts and the gate's verdict."""
    with state.engine.connect() as connection:
        found = get_version(connection, version)
    return ModelVersionDetail(**_public(found).model_dump(), details=dict(found.details))


@router.post(
    "/{version}/promote",
    response_model=ChampionMove,
    responses=MOVE_ERRORS,
    dependencies=[Admin],
)
def promote_version(version: str, state: State) -> ChampionMove:
    """Put a registered version in service; every worker switches within reload_seconds."""
    return _move(state, ChampionAction.PROMOTE, version)


@router.post(
    "/rollback",
    response_model=ChampionMove,
    responses=MOVE_ERRORS,
    dependencies=[Admin],
)
def rollback_champion(state: State, body: RollbackRequest | None = None) -> ChampionMove:
    """Put the previous champion (or the given version) back in service."""
    return _move(state, ChampionAction.ROLLBACK, body.to if body else None)


def _move(state: AppState, action: ChampionAction, version: str | None) -> ChampionMove:
    moved = move(state, action, version, actor="api")
    return ChampionMove(champion=moved.champion, previous=moved.previous)
