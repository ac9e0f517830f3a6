"""Statuses have one owner (``predelinq.statuses``): each migrated database, SQLite and
PostgreSQL, accepts exactly an enum's values in its column and refuses anything else; the
API's response models offer the same values. (Alembic's comparison of the schema with the
migrations does not look at CHECK constraints, so this is the check that they agree.)"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import pytest
from alembic import command
from pydantic import BaseModel
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from predelinq.api.schemas import JobPublic, RetrainingHistoryRow
from predelinq.db import schema
from predelinq.db.migrations import alembic_config, upgrade_to_head
from predelinq.statuses import (
    ChampionAction,
    JobStatus,
    PredictionSource,
    RunStatus,
    TrainingPart,
)

NOW = datetime(2024, 5, 1, 12)


def _row(table: Table, column: str, value: str, n: int) -> dict[str, Any]:
    """A row of ``table`` that is valid but for ``column``."""
    if table is schema.model_retraining_log:
        return {"retrain_date": NOW, column: value}
    if table is schema.retrain_jobs:
        return {"job_id": f"job-{n}", "created_at": NOW, "actor": "test", column: value}
    if table is schema.champion_changes:
        return {"changed_at": NOW, "to_version": "v1", "actor": "test", column: value}
    if table is schema.predictions:
        return {
            "customer_id": f"C{n}",
            "as_of": NOW.date(),
            "model_version": "v1",
            "score": 0.5,
            "band": "high",
            "served_at": NOW,
            "request_id": f"r{n}",
            column: value,
        }
    assert table is schema.model_training_customers
    return {"model_version": "v1", "customer_id": f"C{n}", "learnt": True, column: value}


STATUS_COLUMNS = [
    (schema.model_retraining_log, "status", RunStatus),
    (schema.retrain_jobs, "status", JobStatus),
    (schema.champion_changes, "action", ChampionAction),
    (schema.model_training_customers, "part", TrainingPart),
    (schema.predictions, "source", PredictionSource),
]


@pytest.mark.parametrize(
    ("table", "column", "values"),
    STATUS_COLUMNS,
    ids=[f"{table.name}.{column}" for table, column, _ in STATUS_COLUMNS],
)
def test_the_database_accepts_exactly_the_enums_values(database, table, column, values):
    with database.engine.begin() as connection:
        connection.execute(
            insert(schema.model_versions).values(
                model_version="v1",
                created_at=NOW,
                artifact_path="versions/v1/model.json",
                sha256="0" * 64,
                threshold=0.5,
                details={},
            )
        )
    for n, value in enumerate(values):
        with database.engine.begin() as connection:
            connection.execute(insert(table).values(_row(table, column, value, n)))
    for refused in ("queued", "Success", "", "bogus"):
        with pytest.raises(IntegrityError), database.engine.begin() as connection:
            connection.execute(insert(table).values(_row(table, column, refused, 99)))
    with database.engine.connect() as connection:
        stored = set(connection.execute(select(table.c[column])).scalars())
    assert stored == {value.value for value in values}


def test_a_job_is_never_queued_and_every_run_status_is_a_job_status():
    """A trigger takes the retraining lock before it stores its job: running from then on."""
    assert "queued" not in set(JobStatus)
    assert {status.value for status in RunStatus} < {status.value for status in JobStatus}
    assert JobStatus(RunStatus.REJECTED) is JobStatus.REJECTED


def test_the_api_offers_the_same_values():
    def offered(model: type[BaseModel], field: str) -> list[str]:
        return list(model.model_json_schema()["$defs"][_enum_name(model, field)]["enum"])

    assert offered(JobPublic, "status") == [status.value for status in JobStatus]
    assert offered(RetrainingHistoryRow, "status") == [status.value for status in RunStatus]


def _enum_name(model: type[BaseModel], field: str) -> str:
    annotation = model.model_fields[field].annotation
    assert isinstance(annotation, type) and issubclass(annotation, StrEnum)
    return annotation.__name__


def test_the_status_migration_downgrades_and_upgrades_keeping_rows(database):
    """0007 on a database holding jobs and champion moves (each table is copied on SQLite)."""
    with database.engine.begin() as connection:
        connection.execute(
            insert(schema.retrain_jobs),
            [_row(schema.retrain_jobs, "status", status, n) for n, status in enumerate(JobStatus)],
        )
        connection.execute(
            insert(schema.champion_changes), _row(schema.champion_changes, "action", "promote", 0)
        )

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")
    with database.engine.begin() as connection:  # 0006 allowed 'queued' and any action
        jobs, changes = schema.retrain_jobs, schema.champion_changes
        connection.execute(insert(jobs), _row(jobs, "status", "queued", 9))
        connection.execute(insert(changes), _row(changes, "action", "nudge", 1))
        connection.execute(jobs.delete().where(jobs.c.status == "queued"))
        connection.execute(changes.delete().where(changes.c.action == "nudge"))

    assert upgrade_to_head(database.engine) is True
    with database.engine.connect() as connection:
        jobs = connection.execute(select(schema.retrain_jobs.c.status)).scalars().all()
        actions = connection.execute(select(schema.champion_changes.c.action)).scalars().all()
    assert sorted(jobs) == sorted(status.value for status in JobStatus)
    assert actions == ["promote"]
