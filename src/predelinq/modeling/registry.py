"""Model registry: immutable versions, the champion (the version in service), promote and
rollback.

A registered version is a ``ModelVersion``: its row of ``model_versions`` (artifact path and
sha256, threshold, AUC, details), read-only. Its artifact is written and verified by
:mod:`predelinq.modeling.artifacts`; ``load_champion`` is the one way to load the model in
service, checked against today's features before its artifact is read.

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

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

import xgboost
from sqlalchemy import Connection, Engine, Row, Select, insert, select, update

from predelinq.clock import utc_now
from predelinq.db.engine import BEGIN_IMMEDIATE
from predelinq.db.locks import schema_xact_lock
from predelinq.db.schema import champion_changes, model_champion, model_versions
from predelinq.errors import RegistryError
from predelinq.features.declarations import FeatureSet, model_columns
from predelinq.modeling.artifacts import (
    ArtifactError,
    StoredArtifact,
    booster_from,
    export_seed,
    seed_export_matches,
    verified_payload,
)
from predelinq.statuses import ChampionAction, SeedExportState

CHAMPION_LOCK_KEY = 0x7063686D  # "pchm": champion moves, with the schema as second key


class UnknownVersionError(RegistryError):
    """No registered version has that name."""


class VersionDetails(TypedDict, total=False):
    """What a retrain records about its version (``model_versions.details``, JSON, also in
    the artifact's ``metadata.json``). Versions registered by older releases may lack keys."""

    metrics: dict[str, float]  # the estimate of the artifact's quality, see metrics_source
    metrics_std: dict[str, float]  # over folds, after cross-validation
    metrics_source: str  # "cross_validation", "holdout" or "validation"
    fold_metrics: list[dict[str, float]]
    fit: dict[str, Any]  # method, folds, rows per part, rounds, what the artifact learnt from
    threshold: float
    feature_names: list[str]  # the model's columns, in order
    feature_set_fingerprint: str
    feature_fingerprints: dict[str, str]  # each feature's definition when it was trained
    params: dict[str, Any]  # XGBoost's
    customers_trained: int
    samples_trained: int
    selection_seed: int | None
    trigger_reason: str
    gate: str  # the gate's verdict, in words
    gate_evidence: dict[str, Any]  # the numbers behind it
    champion_auc: float | None
    package_version: str
    importance: dict[str, float]  # mean |contribution| per feature, largest first
    calibration: list[dict[str, float]]  # deciles: mean_score, observed_rate, rows
    calibration_source: str  # which rows the deciles were measured on


@dataclass(frozen=True)
class ModelVersion:
    """A registered version, as read (its row of ``model_versions``)."""

    version: str
    created_at: datetime  # naive UTC
    artifact_path: str  # relative to the model directory
    sha256: str  # of the artifact
    threshold: float  # a score at or above it is flagged
    auc: float | None  # the estimate recorded when it was trained
    details: VersionDetails
    champion: bool = False  # in service when it was read

    @property
    def feature_names(self) -> list[str]:
        return list(self.details.get("feature_names") or [])

    def as_record(self) -> dict[str, Any]:
        """The row under the table's column names, and ``champion``: the JSON form."""
        return {
            "model_version": self.version,
            "created_at": self.created_at,
            "artifact_path": self.artifact_path,
            "sha256": self.sha256,
            "threshold": self.threshold,
            "auc_score": self.auc,
            "details": self.details,
            "champion": self.champion,
        }


@dataclass(frozen=True)
class Champion:
    """The version in service, loaded: its registry row, its verified booster, and where its
    features are among today's feature set's columns."""

    model_version: ModelVersion
    booster: xgboost.Booster
    columns: list[int]  # its features' positions among the feature set's columns
    feature_names: list[str]  # its features, in its columns' order

    @property
    def version(self) -> str:
        return self.model_version.version

    @property
    def threshold(self) -> float:
        return self.model_version.threshold


def register_version(
    connection: Connection,
    *,
    version: str,
    artifact: StoredArtifact,
    threshold: float,
    auc: float | None,
    details: VersionDetails,
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


def _versions_query() -> Select[Any]:
    """Every version with whether it is the champion (one outer join)."""
    in_service = model_champion.c.model_version.is_not(None).label("champion")
    return select(model_versions, in_service).outerjoin(
        model_champion, model_champion.c.model_version == model_versions.c.model_version
    )


def _model_version(row: Row[Any]) -> ModelVersion:
    return ModelVersion(
        version=row.model_version,
        created_at=row.created_at,
        artifact_path=row.artifact_path,
        sha256=row.sha256,
        threshold=float(row.threshold),
        auc=row.auc_score,
        details=cast(VersionDetails, row.details),
        champion=bool(row.champion),
    )


def get_version(connection: Connection, version: str) -> ModelVersion:
    """A registered version; ``UnknownVersionError`` when none has that name."""
    row = connection.execute(
        _versions_query().where(model_versions.c.model_version == version)
    ).one_or_none()
    if row is None:
        raise UnknownVersionError(f"unknown model version {version!r}")
    return _model_version(row)


def list_versions(connection: Connection) -> list[ModelVersion]:
    """Every registered version, newest first."""
    rows = connection.execute(_versions_query().order_by(model_versions.c.created_at.desc()))
    return [_model_version(row) for row in rows]


def current_champion(connection: Connection) -> str | None:
    """The name of the version in service, if any (one cheap query: see ``load_champion``)."""
    return connection.execute(select(model_champion.c.model_version)).scalar_one_or_none()


def champion_version(source: Engine | Connection) -> ModelVersion | None:
    """The version in service, as registered, without loading it."""
    if isinstance(source, Engine):
        with source.connect() as connection:
            return champion_version(connection)
    version = current_champion(source)
    return None if version is None else get_version(source, version)


def load_version(
    model_dir: Path, version: ModelVersion, *, champion: bool = False
) -> xgboost.Booster:
    """Load a registered version's booster once its artifact verifies; an unusable artifact
    raises ``ArtifactError``, worded for the champion when it is one."""
    name = version.version
    try:
        return booster_from(
            name, verified_payload(model_dir, version.artifact_path, version.sha256, version=name)
        )
    except ArtifactError as error:
        raise ArtifactError(name, error.problem, champion=champion) from error


def load_champion(
    source: Engine | Connection, model_dir: Path, features: FeatureSet
) -> Champion | None:
    """The version in service with its verified booster; None when there is none.

    Its features are checked against ``features`` first (``FeatureMismatchError`` when they
    are no longer declared as it learnt them: it could not be scored, whatever its
    artifact), then its artifact (``ArtifactError``, naming the fix, when it is missing,
    fails verification or does not load). The database connection is given back before the
    artifact is read."""
    version = champion_version(source)
    if version is None:
        return None
    columns = model_columns(version.version, version.details, features)
    booster = load_version(model_dir, version, champion=True)
    names = [features.names[k] for k in columns]
    return Champion(version, booster, columns, names)


def seed_export_state(connection: Connection, model_dir: Path) -> SeedExportState:
    """Whether the seed's copy holds the champion's artifact."""
    version = champion_version(connection)
    if version is None:
        return SeedExportState.NO_CHAMPION
    matches = seed_export_matches(model_dir, version.sha256)
    if matches is None:
        return SeedExportState.MISSING
    return SeedExportState.CURRENT if matches else SeedExportState.STALE


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
                connection.execute(schema_xact_lock(CHAMPION_LOCK_KEY))
            yield connection


def set_champion(
    connection: Connection,
    *,
    to_version: str,
    action: ChampionAction,
    actor: str,
    reason: str | None = None,
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
            action=action.value,
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
        if action == ChampionAction.ROLLBACK and stack:
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
    moved = move_champion(
        engine, model_dir, action=ChampionAction.PROMOTE, actor=actor, to_version=version
    )
    return moved.previous or ""


def rollback(engine: Engine, model_dir: Path, *, actor: str, to_version: str | None = None) -> str:
    """Put the previous (or the given) version back in service; returns the new champion."""
    return move_champion(
        engine, model_dir, action=ChampionAction.ROLLBACK, actor=actor, to_version=to_version
    ).champion


def move_champion(
    engine: Engine,
    model_dir: Path,
    *,
    action: ChampionAction,
    actor: str,
    to_version: str | None = None,
) -> ChampionMoved:
    """Promote ``to_version``, or roll back (to ``to_version``, default the previous
    champion), once its artifact verifies and loads; the seed export is written before the
    commit, under the champion lock, so the last move's artifact is the one exported."""
    with champion_transaction(engine) as connection:
        version = get_version(connection, to_version or rollback_target(connection))
        name = version.version
        payload = verified_payload(model_dir, version.artifact_path, version.sha256, version=name)
        booster_from(name, payload)  # it must load, not only match its hash
        previous = current_champion(connection)
        set_champion(connection, to_version=name, action=action, actor=actor)
        export_error = export_seed(model_dir, payload)
    return ChampionMoved(name, previous, export_error)
