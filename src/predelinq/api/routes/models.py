"""/models: the registry, and moving the champion (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from predelinq.api.deps import AUTH_RESPONSES, Admin, Reader, State
from predelinq.api.schemas import (
    ChampionMove,
    ErrorResponse,
    ModelVersionDetail,
    ModelVersionPublic,
    RollbackRequest,
)
from predelinq.registry import (
    RegistryError,
    current_champion,
    get_version,
    list_versions,
    promote,
    rollback,
)

router = APIRouter(prefix="/models", tags=["models"], responses=AUTH_RESPONSES)


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
    responses={404: {"model": ErrorResponse}},
    dependencies=[Admin],
)
def promote_version(version: str, state: State) -> ChampionMove:
    """Put a registered version in service; every worker switches within reload_seconds."""
    try:
        previous = promote(state.engine, state.settings.model_dir, version, actor="api")
    except RegistryError as error:
        raise HTTPException(404, str(error)) from error
    state.champion.refresh()
    return ChampionMove(champion=version, previous=previous or None)


@router.post(
    "/rollback",
    response_model=ChampionMove,
    responses={409: {"model": ErrorResponse}},
    dependencies=[Admin],
)
def rollback_champion(state: State, body: RollbackRequest | None = None) -> ChampionMove:
    """Put the previous champion (or the given version) back in service."""
    with state.engine.connect() as connection:
        previous = current_champion(connection)
    try:
        target = rollback(
            state.engine,
            state.settings.model_dir,
            actor="api",
            to_version=body.to if body else None,
        )
    except RegistryError as error:
        raise HTTPException(409, str(error)) from error
    state.champion.refresh()
    return ChampionMove(champion=target, previous=previous)
