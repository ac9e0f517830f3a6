"""Predelinq's errors as HTTP statuses: one table, registered once on the app.

Routes let the library's errors through; ``predelinq_error`` answers ``{"detail": message}``
with the status of the first class in ``STATUSES`` the error is an instance of (the most
specific classes come first). ``PredelinqError`` itself closes the table: an error the
library raised on purpose but the table does not name is a 500 with its message, logged.
Any other exception is a bug, and FastAPI's 500 says so.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from predelinq.errors import PredelinqError, RegistryError
from predelinq.features.declarations import FeatureMismatchError
from predelinq.features.export import NoKnownCustomerError
from predelinq.modeling.artifacts import ArtifactError
from predelinq.modeling.registry import UnknownVersionError
from predelinq.retraining.jobs import JobConflictError
from predelinq.retraining.lock import RetrainingBusyError
from predelinq.serving.score import NoChampionError

log = logging.getLogger(__name__)

STATUSES: tuple[tuple[type[PredelinqError], int], ...] = (
    (UnknownVersionError, 404),
    (NoKnownCustomerError, 404),
    (NoChampionError, 503),  # no model yet: a retrain makes one
    (JobConflictError, 409),  # a retrain is running
    (RetrainingBusyError, 409),
    # a stored model's artifact is missing or fails verification: the server's storage,
    # not the request; the message names the version and the fix, the champion stays
    (ArtifactError, 500),
    (FeatureMismatchError, 409),  # the model's features are no longer declared
    (RegistryError, 409),  # e.g. nothing to roll back to: the champion stays
    (PredelinqError, 500),
)


def status_of(error: PredelinqError) -> int:
    return next(status for kind, status in STATUSES if isinstance(error, kind))


async def predelinq_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PredelinqError)
    status = status_of(error)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, status_code=status)


def register(app: FastAPI) -> None:
    """Every ``PredelinqError`` a route lets through, answered by ``STATUSES``."""
    app.add_exception_handler(PredelinqError, predelinq_error)
