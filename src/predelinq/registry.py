"""Model registry: immutable versions, verified artifacts, the champion, promote and rollback.

Artifacts are written atomically (temporary file, fsync, rename) under
``<model dir>/versions/<version>/model.json`` with a ``metadata.json`` beside them, and their
sha256 is recorded; every load verifies it. The champion is one row that only moves through
``set_champion``, which records each move (from, to, action, actor, reason). The champion is
also exported to the seed's path ``<model dir>/quick/quick_model.json`` for older tools.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xgboost
from sqlalchemy import Connection, Engine, insert, select, update

from predelinq.db.schema import champion_changes, model_champion, model_versions

SEED_EXPORT_PATH = Path("quick") / "quick_model.json"


class RegistryError(Exception):
    """Unknown version, nothing to roll back to, or an artifact that fails verification."""


@dataclass(frozen=True)
class StoredArtifact:
    relative_path: str
    sha256: str


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_artifact(
    model_dir: Path, version: str, booster: xgboost.Booster, metadata: dict[str, Any]
) -> StoredArtifact:
    """Write a version's model and metadata; returns where, and the model's sha256."""
    payload = bytes(booster.save_raw(raw_format="json"))
    relative = Path("versions") / version / "model.json"
    write_atomically(model_dir / relative, payload)
    sidecar = json.dumps(metadata, indent=2, sort_keys=True, default=str).encode()
    write_atomically(model_dir / relative.with_name("metadata.json"), sidecar)
    return StoredArtifact(str(relative), hashlib.sha256(payload).hexdigest())


def load_booster(model_dir: Path, relative_path: str, sha256: str) -> xgboost.Booster:
    """Load an artifact after checking its sha256 against the registry's."""
    return _booster(_verified_payload(model_dir, relative_path, sha256))


def export_champion(model_dir: Path, relative_path: str, sha256: str) -> Path:
    """Replace the seed's ``quick/quick_model.json`` with the champion's verified artifact."""
    write_atomically(
        model_dir / SEED_EXPORT_PATH, _verified_payload(model_dir, relative_path, sha256)
    )
    return model_dir / SEED_EXPORT_PATH


def _verified_payload(model_dir: Path, relative_path: str, sha256: str) -> bytes:
    payload = (model_dir / relative_path).read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise RegistryError(
            f"artifact {relative_path} fails verification: sha256 {actual}, expected {sha256}"
        )
    return payload


def _booster(payload: bytes) -> xgboost.Booster:
    booster = xgboost.Booster()
    booster.load_model(bytearray(payload))
    return booster


def register_version(
    connection: Connection,
    *,
    version: str,
    artifact: StoredArtifact,
    threshold: float,
    auc: float | None,
    details: dict[str, Any],
    created_at: datetime,
) -> None:
    connection.execute(
        insert(model_versions).values(
            model_version=version,
            created_at=created_at,
            artifact_path=artifact.relative_path,
            sha256=artifact.sha256,
            threshold=threshold,
            auc_score=auc,
            details=_json_safe(json.loads(json.dumps(details, default=str))),
        )
    )


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and PostgreSQL refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def get_version(connection: Connection, version: str) -> dict[str, Any]:
    row = connection.execute(
        select(model_versions).where(model_versions.c.model_version == version)
    ).one_or_none()
    if row is None:
        raise RegistryError(f"unknown model version {version!r}")
    return dict(row._mapping)


def list_versions(connection: Connection) -> list[dict[str, Any]]:
    champion = current_champion(connection)
    rows = connection.execute(select(model_versions).order_by(model_versions.c.created_at.desc()))
    return [{**row._mapping, "champion": row.model_version == champion} for row in rows]


def current_champion(connection: Connection) -> str | None:
    return connection.execute(select(model_champion.c.model_version)).scalar_one_or_none()


def set_champion(
    connection: Connection, *, to_version: str, action: str, actor: str, reason: str | None = None
) -> None:
    """Move the champion and record the move, inside the caller's transaction."""
    get_version(connection, to_version)
    now = utc_now()
    from_version = current_champion(connection)
    if from_version is None:
        connection.execute(
            insert(model_champion).values(slot=1, model_version=to_version, since=now)
        )
    else:
        connection.execute(update(model_champion).values(model_version=to_version, since=now))
    connection.execute(
        insert(champion_changes).values(
            changed_at=now,
            from_version=from_version,
            to_version=to_version,
            action=action,
            actor=actor,
            reason=reason,
        )
    )


def rollback_target(connection: Connection) -> str:
    """The champion before the current one: promotions stack up, each rollback pops one."""
    stack: list[str] = []
    changes = connection.execute(
        select(champion_changes.c.action, champion_changes.c.to_version).order_by(
            champion_changes.c.change_id
        )
    )
    for action, to_version in changes:
        if action == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != to_version:
            stack.append(to_version)
    if len(stack) < 2:
        raise RegistryError("no earlier champion to roll back to")
    return stack[-2]


def promote(engine: Engine, model_dir: Path, version: str, *, actor: str) -> str:
    """Make ``version`` the champion; returns the previous champion (or '')."""
    _, previous = _move_champion(engine, model_dir, lambda _: version, "promote", actor)
    return previous


def rollback(engine: Engine, model_dir: Path, *, actor: str, to_version: str | None = None) -> str:
    """Put the previous (or the given) version back in service; returns the new champion."""
    target = (lambda _: to_version) if to_version else rollback_target
    champion, _ = _move_champion(engine, model_dir, target, "rollback", actor)
    return champion


def _move_champion(
    engine: Engine,
    model_dir: Path,
    choose: Callable[[Connection], str],
    action: str,
    actor: str,
) -> tuple[str, str]:
    """Make the chosen version the champion once its artifact verifies and loads, then export
    it to the seed's path; returns (new champion, previous champion or '')."""
    with engine.begin() as connection:
        version = choose(connection)
        row = get_version(connection, version)
        payload = _verified_payload(model_dir, row["artifact_path"], row["sha256"])
        _booster(payload)  # it must load, not only match its hash
        previous = current_champion(connection) or ""
        set_champion(connection, to_version=version, action=action, actor=actor)
    write_atomically(model_dir / SEED_EXPORT_PATH, payload)
    return version, previous
