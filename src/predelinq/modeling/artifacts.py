"""Model artifacts on disk: written atomically, recorded with their sha256, verified on load.

A version's files are ``<model dir>/versions/<version>/model.json`` (XGBoost's JSON format)
and ``metadata.json`` beside it. Each is written to a temporary file, flushed to disk and
renamed over the target, so a reader sees the old file or the new, never half of one; the
directory is flushed too on POSIX systems, so the rename survives a power cut (Windows has
no directory handle to flush: ``os.replace`` is as durable as it gets there). Files are
created with mode 0666 less the umask. Every load checks the payload's sha256 against the
registry's; a missing, altered or unloadable artifact raises ``ArtifactError`` naming the
version, worded with the fix when it is the champion's.

Nothing here deletes a file a reader may hold open: a failed write removes only its own
temporary file, or the folder of a version that was never registered; the seed export is
replaced by a rename (on Windows a rename over a file another process holds open fails, and
the export is then reported stale rather than undoing a champion move).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost

from predelinq.errors import RegistryError

SEED_EXPORT_PATH = Path("quick") / "quick_model.json"
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation on write
FIX_CHAMPION = (
    "put a good version in service with `predelinq promote VERSION` or `predelinq rollback`"
)


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
    relative_path: str  # to the model directory
    sha256: str


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    # os.open with 0o666 lets the kernel apply the umask (mkstemp's files are 0600)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # ours alone: nobody else knows its name
        raise
    if os.name == "posix":  # Windows cannot open a directory to flush it
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def version_dir(model_dir: Path, version: str) -> Path:
    return model_dir / "versions" / version


def save_artifact(
    model_dir: Path, version: str, booster: xgboost.Booster, metadata: Mapping[str, Any]
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
            f"cannot write model {version} in {model_dir}: {os_problem(error)}"
        ) from error
    return StoredArtifact(relative.as_posix(), hashlib.sha256(payload).hexdigest())


def remove_version_files(model_dir: Path, version: str) -> None:
    """Remove a version's folder (an artifact that was never registered, so never loaded)."""
    shutil.rmtree(version_dir(model_dir, version), ignore_errors=True)


def os_problem(error: OSError) -> str:
    """``[Errno 20] Not a directory: '/x/quick'`` without the errno: the reader wants words."""
    where = f" ({error.filename})" if error.filename else ""
    if isinstance(error, FileExistsError):  # mkdir where a file stands
        return f"not a directory{where}"
    return f"{error.strerror or error}{where}"


def verified_payload(model_dir: Path, relative_path: str, sha256: str, *, version: str) -> bytes:
    """The artifact's bytes, once their sha256 matches the registry's."""
    path = model_dir / relative_path
    try:
        payload = path.read_bytes()
    except FileNotFoundError as error:
        raise ArtifactError(version, f"its artifact {path} is missing") from error
    except OSError as error:
        raise ArtifactError(version, f"its artifact cannot be read: {os_problem(error)}") from error
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ArtifactError(
            version,
            f"its artifact {path} fails verification (sha256 {actual[:12]}…, "
            f"registered {sha256[:12]}…)",
        )
    return payload


def booster_from(version: str, payload: bytes) -> xgboost.Booster:
    """A booster from an artifact's bytes; ``ArtifactError`` if XGBoost cannot load them."""
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
        return f"could not update {model_dir / SEED_EXPORT_PATH}: {os_problem(error)}"
    return None


def seed_export_matches(model_dir: Path, sha256: str) -> bool | None:
    """Whether the seed's export holds the artifact with ``sha256``; None when it is missing."""
    try:
        payload = (model_dir / SEED_EXPORT_PATH).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return False
    return hashlib.sha256(payload).hexdigest() == sha256
