"""Model registry: immutable versions, verified artifacts, the champion, promote and rollback.

Artifacts are written atomically (temporary file, fsync, rename) under
``<model dir>/versions/<version>/model.json`` with a ``metadata.json`` beside them, and their
sha256 is recorded; every load verifies it. Files are created with mode 0666 less the umask.
A version whose artifact is missing, fails verification or does not load raises
``ArtifactError`` naming the version and the fix.

The champion is one row that only moves through ``set_champion``, which records each move
(from, to, action, actor, reason). Moves are serialised: each runs in a
``champion_transaction``, which takes a per-schema advisory lock on PostgreSQL and the write
lock (``BEGIN IMMEDIATE``) on SQLite before it reads the champion, so two moves never both
start from the same champion. The champion is also exported, inside that transaction, to
the seed's path ``<model dir>/quick/quick_model.json`` for older tools; a failed export
does not undo the move: it is reported (``seed_export_error``) and ``seed_export_state``
shows it as stale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import xgboost
from sqlalchemy import Connection, Engine, func, insert, select, update

from predelinq.clock import utc_now
from predelinq.db.engine import BEGIN_IMMEDIATE
from predelinq.db.schema import champion_changes, model_champion, model_versions

SEED_EXPORT_PATH = Path("quick") / "quick_model.json"
CHAMPION_LOCK_KEY = 0x7063686D  # "pchm": champion moves, with the schema as second key
FIX_CHAMPION = (
    "put a good version in service with `predelinq promote VERSION` or `predelinq rollback`"
)


class RegistryError(Exception):
    """Unknown version, nothing to roll back to, or an artifact that fails verification."""


class UnknownVersionError(RegistryError):
    """No registered version has that name."""


class ArtifactError(RegistryError):
    """A version's artifact is missing, fails verification or does not load. As the
    champion's, the message names the fix."""

    def __init__(self, version: str, problem: str, *, champion: bool = False):
        self.version, self.problem, self.champion = version, problem, champion
        if champion:
            message = f"the champion {version} cannot be used: {problem}; {FIX_CHAMPION}"
        else:
            message = f"model {version} cannot be used: {problem}"
        super().__init__(message)


class ArtifactWriteError(RegistryError):
    """The model directory cannot take a new artifact (not a directory, read-only, full)."""


@dataclass(frozen=True)
class StoredArtifact:
    relative_path: str
    sha256: str


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    # os.open with 0o666 lets the kernel apply the umask (mkstemp's files are 0600)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def version_dir(model_dir: Path, version: str) -> Path:
    return model_dir / "versions" / version


def save_artifact(
    model_dir: Path, version: str, booster: xgboost.Booster, metadata: dict[str, Any]
) -> StoredArtifact:
    """Write a version's model and metadata; returns where, and the model's sha256.

    Raises ``ArtifactWriteError`` naming the directory when they cannot be written, and
    leaves no folder for the version behind."""
    payload = bytes(booster.save_raw(raw_format="json"))
    relative = Path("versions") / version / "model.json"
    sidecar = json.dumps(metadata, indent=2, sort_keys=True, default=str).encode()
    try:
        write_atomically(model_dir / relative, payload)
        write_atomically(model_dir / relative.with_name("metadata.json"), sidecar)
    except OSError as error:
        remove_version_files(model_dir, version)
        raise ArtifactWriteError(
            f"cannot write model {version} in {model_dir}: {_os_problem(error)}"
        ) from error
    return StoredArtifact(str(relative), hashlib.sha256(payload).hexdigest())


def remove_version_files(model_dir: Path, version: str) -> None:
    """Remove a version's folder (an artifact that was never registered)."""
    shutil.rmtree(version_dir(model_dir, version), ignore_errors=True)


def _os_problem(error: OSError) -> str:
    """``[Errno 20] Not a directory: '/x/quick'`` without the errno: the reader wants words."""
    where = f" ({error.filename})" if error.filename else ""
    if isinstance(error, FileExistsError):  # mkdir where a file stands
        return f"not a directory{where}"
    return f"{error.strerror or error}{where}"


def load_booster(
    model_dir: Path, relative_path: str, sha256: str, *, version: str | None = None
) -> xgboost.Booster:
    """Load an artifact after checking its sha256 against the registry's."""
    name = version or relative_path
    return _booster(name, _verified_payload(model_dir, relative_path, sha256, version=name))


def load_version(
    model_dir: Path, row: Mapping[str, Any], *, champion: bool = False
) -> xgboost.Booster:
    """Load a registered version's booster (``row`` as ``get_version`` returns it); an
    unusable artifact raises ``ArtifactError``, worded for the champion when it is one."""
    version = row["model_version"]
    try:
        payload = _verified_payload(model_dir, row["artifact_path"], row["sha256"], version=version)
        return _booster(version, payload)
    except ArtifactError as error:
        raise ArtifactError(version, error.problem, champion=champion) from error


def _verified_payload(model_dir: Path, relative_path: str, sha256: str, *, version: str) -> bytes:
    path = model_dir / relative_path
    try:
        payload = path.read_bytes()
    except FileNotFoundError as error:
        raise ArtifactError(version, f"its artifact {path} is missing") from error
    except OSError as error:
        raise ArtifactError(
            version, f"its artifact cannot be read: {_os_problem(error)}"
        ) from error
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ArtifactError(
            version,
            f"its artifact {path} fails verification (sha256 {actual[:12]}…, "
            f"registered {sha256[:12]}…)",
        )
    return payload


def _booster(version: str, payload: bytes) -> xgboost.Booster:
    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(payload))
    except xgboost.core.XGBoostError as error:
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise ArtifactError(version, f"its artifact does not load ({first_line})") from error
    return booster


def export_seed(model_dir: Path, payload: bytes) -> str | None:
    """Write the champion's artifact to the seed's path; returns why it failed, if it did
    (the champion has moved all the same: the export is a copy for older tools)."""
    try:
        write_atomically(model_dir / SEED_EXPORT_PATH, payload)
    except OSError as error:
        return f"could not update {model_dir / SEED_EXPORT_PATH}: {_os_problem(error)}"
    return None


def seed_export_state(connection: Connection, model_dir: Path) -> str:
    """``current``, ``stale`` (not the champion's artifact), ``missing`` or ``no champion``."""
    version = current_champion(connection)
    if version is None:
        return "no champion"
    path = model_dir / SEED_EXPORT_PATH
    try:
        payload = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError:
        return "stale"
    current = hashlib.sha256(payload).hexdigest() == get_version(connection, version)["sha256"]
    return "current" if current else "stale"


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
        raise UnknownVersionError(f"unknown model version {version!r}")
    return dict(row._mapping)


def list_versions(connection: Connection) -> list[dict[str, Any]]:
    champion = current_champion(connection)
    rows = connection.execute(select(model_versions).order_by(model_versions.c.created_at.desc()))
    return [{**row._mapping, "champion": row.model_version == champion} for row in rows]


def current_champion(connection: Connection) -> str | None:
    return connection.execute(select(model_champion.c.model_version)).scalar_one_or_none()


@contextmanager
def champion_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the champion lock from its first statement: any champion
    move (promote, rollback, a retrain's promotion) runs in one, so moves are serialised and
    each reads the champion that is in service when it commits. PostgreSQL: a transaction
    advisory lock per schema; SQLite: ``BEGIN IMMEDIATE``, the database's write lock."""
    with engine.connect() as connection:
        connection.execution_options(**{BEGIN_IMMEDIATE: True})
        with connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(
                    select(
                        func.pg_advisory_xact_lock(
                            CHAMPION_LOCK_KEY, func.hashtext(func.current_schema())
                        )
                    )
                )
            yield connection


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


@dataclass(frozen=True)
class ChampionMoved:
    champion: str
    previous: str | None
    seed_export_error: str | None = None  # the move stands; quick/quick_model.json is stale


def promote(engine: Engine, model_dir: Path, version: str, *, actor: str) -> str:
    """Make ``version`` the champion; returns the previous champion (or '')."""
    return (
        move_champion(engine, model_dir, action="promote", actor=actor, to_version=version).previous
        or ""
    )


def rollback(engine: Engine, model_dir: Path, *, actor: str, to_version: str | None = None) -> str:
    """Put the previous (or the given) version back in service; returns the new champion."""
    return move_champion(
        engine, model_dir, action="rollback", actor=actor, to_version=to_version
    ).champion


def move_champion(
    engine: Engine,
    model_dir: Path,
    *,
    action: str,
    actor: str,
    to_version: str | None = None,
) -> ChampionMoved:
    """Promote ``to_version``, or roll back (to ``to_version``, default the previous
    champion), once its artifact verifies and loads; the seed export is written before the
    commit, under the champion lock, so the last move's artifact is the one exported."""
    with champion_transaction(engine) as connection:
        version = to_version or rollback_target(connection)
        row = get_version(connection, version)
        payload = _verified_payload(model_dir, row["artifact_path"], row["sha256"], version=version)
        _booster(version, payload)  # it must load, not only match its hash
        previous = current_champion(connection)
        set_champion(connection, to_version=version, action=action, actor=actor)
        export_error = export_seed(model_dir, payload)
    return ChampionMoved(version, previous, export_error)
