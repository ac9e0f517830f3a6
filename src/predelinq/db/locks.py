"""PostgreSQL advisory locks per schema. The champion, the migrations and the retraining
lock each name theirs with a first key; the current schema is the second, so deployments in
other schemas of one database do not block each other."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.sql.functions import Function


def schema_lock_key() -> Function[Any]:
    """The second key of our PostgreSQL advisory locks (the first names the lock): deployments
    in other schemas of the same database do not block each other."""
    return func.hashtext(func.current_schema())


def schema_xact_lock(key: int) -> Select[Any]:
    """PostgreSQL: wait for this schema's transaction advisory lock ``key``, held until the
    transaction ends."""
    return select(func.pg_advisory_xact_lock(key, schema_lock_key()))
