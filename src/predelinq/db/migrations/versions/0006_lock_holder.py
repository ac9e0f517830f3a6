"""retraining_lease records who holds the lock and since when, not a lease expiry

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The lock is now an advisory lock (PostgreSQL) or a file lock (SQLite) that dies with its
    # holder; a lease row left by the old scheme means nothing.
    op.execute("DELETE FROM retraining_lease")
    with op.batch_alter_table("retraining_lease") as batch_op:
        batch_op.alter_column("expires_at", new_column_name="acquired_at")


def downgrade() -> None:
    op.execute("DELETE FROM retraining_lease")
    with op.batch_alter_table("retraining_lease") as batch_op:
        batch_op.alter_column("acquired_at", new_column_name="expires_at")
