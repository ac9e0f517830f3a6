"""job statuses without 'queued'; champion moves checked like every other status

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as they were when this revision was written (predelinq.statuses may grow later,
# in a later revision).
JOB_STATUSES = "status IN ('running', 'success', 'rejected', 'failed')"
JOB_STATUSES_BEFORE = "status IN ('queued', 'running', 'success', 'rejected', 'failed')"
CHAMPION_ACTIONS = "action IN ('retrain', 'promote', 'rollback')"


def upgrade() -> None:
    # No job was ever written 'queued': a trigger takes the retraining lock before it stores
    # its job, which is running from then on; a second trigger is refused, never queued.
    _replace_job_check(JOB_STATUSES)
    with op.batch_alter_table("champion_changes") as batch_op:
        batch_op.create_check_constraint(
            batch_op.f("ck_champion_changes_action_known"), CHAMPION_ACTIONS
        )


def downgrade() -> None:
    with op.batch_alter_table("champion_changes") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_champion_changes_action_known"), type_="check")
    _replace_job_check(JOB_STATUSES_BEFORE)


def _replace_job_check(condition: str) -> None:
    with op.batch_alter_table("retrain_jobs") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_retrain_jobs_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_retrain_jobs_status_known"), condition)
