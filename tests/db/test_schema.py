"""Schema and migrations: the migration history matches the tables, on both databases."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from predelinq.db import schema
from predelinq.db.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)


def test_migrations_reach_head_and_rerun_is_a_no_op(database):
    assert current_revision(database.engine) == head_revision()
    assert upgrade_to_head(database.engine) is False


def test_migrations_match_the_table_definitions(database):
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert differences == []


def test_balance_after_migration_downgrades_and_upgrades_keeping_rows(database):
    """0004 on a database holding transactions: down drops the column, up adds it back empty."""
    row = {"txn_id": "T1", "customer_id": "C1", "txn_time": datetime(2024, 2, 1, 12)}
    with database.engine.begin() as connection:
        connection.execute(
            insert(schema.transactions),
            {**row, "amount": 42.5, "txn_type": "debit", "balance_after": -17.25},
        )

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")
    with database.engine.connect() as connection:
        columns = [c["name"] for c in inspect(connection).get_columns("transactions")]
        count = connection.exec_driver_sql("SELECT count(*) FROM transactions").scalar_one()
    assert "balance_after" not in columns and count == 1
    assert current_revision(database.engine) == "0003"

    assert upgrade_to_head(database.engine) is True
    with database.engine.connect() as connection:
        stored = connection.execute(select(schema.transactions)).one()._asdict()
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert differences == []
    assert {name: stored[name] for name in row} == row
    assert (stored["amount"], stored["balance_after"]) == (42.5, None)
