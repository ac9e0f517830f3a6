"""Schema and migrations: the migration history matches the tables, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from predelinq.db import schema
from predelinq.db.migrations import current_revision, head_revision, upgrade_to_head


def test_migrations_reach_head_and_rerun_is_a_no_op(database):
    assert current_revision(database.engine) == head_revision()
    assert upgrade_to_head(database.engine) is False


def test_migrations_match_the_table_definitions(database):
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert differences == []
