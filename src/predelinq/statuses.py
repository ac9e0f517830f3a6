"""Every status predelinq stores or reports, in one place: the database's CHECK constraints
(``db/schema.py``, through :func:`check_in`), the code that writes them and the API's
response models all take their values from these enums, so a new value is added here once.

Being ``StrEnum``\\ s, they compare equal to their text (``RunStatus.SUCCESS == "success"``)
and are written to JSON and to the database as it.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """How a retrain ended (``model_retraining_log.status``)."""

    SUCCESS = "success"  # registered and promoted
    REJECTED = "rejected"  # registered, kept out by the gate (or the champion moved meanwhile)
    FAILED = "failed"  # stopped before registering a version


class JobStatus(StrEnum):
    """A retrain started through the API (``retrain_jobs.status``). A job is ``running`` from
    the moment it is stored: the request takes the retraining lock first, and a trigger while
    a retrain runs is refused (409), never queued."""

    RUNNING = "running"
    SUCCESS = RunStatus.SUCCESS.value
    REJECTED = RunStatus.REJECTED.value
    FAILED = RunStatus.FAILED.value


class ChampionAction(StrEnum):
    """What moved the champion (``champion_changes.action``)."""

    RETRAIN = "retrain"  # a retrain's challenger passed the gate (or was forced)
    PROMOTE = "promote"  # by hand
    ROLLBACK = "rollback"  # by hand, to the previous (or a named) version


class TrainingPart(StrEnum):
    """Where a customer's rows went in a retrain (``model_training_customers.part``)."""

    FIT = "fit"
    VALIDATION = "validation"
    HOLDOUT = "holdout"  # the gate's: the newest customers no fit has touched


class PredictionSource(StrEnum):
    """Which path served a logged score (``predictions.source``)."""

    PREDICT = "predict"  # POST /predict
    BATCH = "batch"  # POST /predict/batch
    SCORE = "score"  # predelinq score


class SeedExportState(StrEnum):
    """The seed's copy of the champion, ``<model dir>/quick/quick_model.json``."""

    CURRENT = "current"
    STALE = "stale"  # not the champion's artifact (a failed export)
    MISSING = "missing"
    NO_CHAMPION = "no champion"


def check_in(column: str, values: type[StrEnum]) -> str:
    """The CHECK constraint's text: ``column IN ('a', 'b')`` in the enum's order."""
    quoted = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({quoted})"
