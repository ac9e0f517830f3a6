"""Alembic environment: always run online against the connection we are given."""

from alembic import context

from predelinq.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("predelinq migrations run through predelinq.db.migrations.upgrade_to_head")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
