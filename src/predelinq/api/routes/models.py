"""/models: the registry, and moving the champion (admin).

Errors: an unknown version is 404; nothing to roll back to, or a version whose artifact is
missing or fails verification, is 409 (the champion stays)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException

from predelinq.api.deps import AUTH_RESPONSES, Admin, Reader, State
from predelinq.api.schemas import (
    ChampionMove,
    ErrorResponse,
    ModelVersionDetail,
    ModelVersionPublic,
    RollbackRequest,
)
from predelinq.modeling.registry import (
    RegistryError,
    UnknownVersionError,
    current_champion,
    get_version,
    list_versions,
    move_champion,
)

router = APIRouter(prefix="/models", tags=["models"], responses=AUTH_RESPONSES)
log = logging.getLogger("predelinq.api")
MOVE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
}


def _status(error: RegistryError) -> int:
    return 404 if isinstance(error, UnknownVersionError) else 409


def _public(row: dict) -> dict:
    return {**row, "created_at": row["created_at"].isoformat(timespec="seconds")}


@router.get("", response_model=list[ModelVersionPublic], dependencies=[Reader])
def models(state: State) -> list[dict]:
    """Every registered version, newest first, the champion marked."""
    with state.engine.connect() as connection:
        return [_public(row) for row in list_versions(connection)]


@router.get(
    "/{version}",
    response_model=ModelVersionDetail,
    responses={404: {"model": ErrorResponse}},
    dependencies=[Reader],
)
def model(version: str, state: State) -> dict:
    """One version: metrics, features, parameters, counts and the gate's verdict."""
    try:
        with state.engine.connect() as connection:
            row = get_version(connection, version)
            champion = current_champion(connection)
    except RegistryError as error:
        raise HTTPException(404, str(error)) from error
    return _public({**row, "champion": version == champion})


@router.post(
    "/{version}/promote",
    response_model=ChampionMove,
    responses=MOVE_ERRORS,
    dependencies=[Admin],
)
def promote_version(version: str, state: State) -> ChampionMove:
    """Put a registered version in service; every worker switches within reload_seconds."""
    return _move(state, "promote", version)


@router.post(
    "/rollback",
    response_model=ChampionMove,
    responses=MOVE_ERRORS,
    dependencies=[Admin],
)
def rollback_champion(state: State, body: RollbackRequest | None = None) -> ChampionMove:
    """Put the previous champion (or the given version) back in service."""
    return _move(state, "rollback", body.to if body else None)


def _move(state: State, action: str, version: str | None) -> ChampionMove:
    try:
        move = move_champion(
            state.engine, state.settings.model_dir, action=action, actor="api", to_version=version
        )
    except RegistryError as error:
        raise HTTPException(_status(error), str(error)) from error
    if move.seed_export_error:
        log.warning("champion %s in service; %s", move.champion, move.seed_export_error)
    state.champion.refresh()
    return ChampionMove(champion=move.champion, previous=move.previous)
