"""The champion's lineage: every move of the champion (``champion_changes``), newest first,
with who moved it and why, and since when the version in service has served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from predelinq.db.schema import champion_changes, model_champion
from predelinq.statuses import ChampionAction


@dataclass(frozen=True)
class ChampionChange:
    changed_at: datetime  # naive UTC
    from_version: str | None
    to_version: str
    action: ChampionAction  # retrain (the gate promoted it), promote or rollback
    actor: str
    reason: str | None


def champion_changes_newest_first(connection: Connection, limit: int = 100) -> list[ChampionChange]:
    """The last ``limit`` moves of the champion, newest first."""
    table = champion_changes
    rows = connection.execute(
        select(
            table.c.changed_at,
            table.c.from_version,
            table.c.to_version,
            table.c.action,
            table.c.actor,
            table.c.reason,
        )
        .order_by(table.c.change_id.desc())
        .limit(limit)
    )
    return [
        ChampionChange(
            row.changed_at,
            row.from_version,
            row.to_version,
            ChampionAction(row.action),
            row.actor,
            row.reason,
        )
        for row in rows
    ]


def champion_since(connection: Connection) -> datetime | None:
    """When the version in service went into service (naive UTC); None without a champion."""
    return connection.execute(select(model_champion.c.since)).scalar_one_or_none()
