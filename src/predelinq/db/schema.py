"""The tables, as SQLAlchemy Core. Changes to them ship as Alembic migrations.

Timestamps are stored as naive UTC; ``customer_id`` is text in every table.

Events and labels carry no foreign-key constraint to ``customers``: ingest checks every
call's customer ids in one set-based query inside the same transaction, and nothing deletes
customers. A per-row foreign-key trigger halved PostgreSQL's bulk-load rate (measured).
On PostgreSQL, identifier columns use the "C" collation: byte order, the same on every
server, and much cheaper to index than a locale's collation.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.types import TypeEngine

from predelinq.statuses import (
    ChampionAction,
    JobStatus,
    PredictionSource,
    RunStatus,
    TrainingPart,
    check_in,
)

CUSTOMER_ID_MAX_LENGTH = 255


def _identifier(length: int = 255) -> TypeEngine[str]:
    """Opaque identifier text: byte-order collation on PostgreSQL."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _customer_id() -> Column[str]:
    return Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), nullable=False)


customers = Table(
    "customers",
    metadata,
    Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("monthly_income", Float),
    Column("salary_day", SmallInteger),
    Column("credit_limit", Float),
    CheckConstraint("salary_day BETWEEN 1 AND 31", name="salary_day_range"),
    Index(None, "created_at"),
)

transactions = Table(
    "transactions",
    metadata,
    # No surrogate key: rows are identified by txn_id, or when it is empty by all columns.
    Column("txn_id", _identifier(), unique=True),
    _customer_id(),
    Column("txn_time", DateTime, nullable=False),
    Column("amount", Float, nullable=False),
    Column("txn_type", String(6), nullable=False),
    Column("category", String(64)),
    Column("merchant_id", String(255)),
    Column("channel", String(32)),
    Column("balance_after", Float),  # after the transaction; negative when overdrawn
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("txn_type IN ('credit', 'debit')", name="txn_type_known"),
    Index(None, "customer_id", "txn_time"),
)

payments = Table(
    "payments",
    metadata,
    _customer_id(),
    Column("due_date", Date, nullable=False),
    Column("amount_due", Float, nullable=False),
    Column("amount_paid", Float),
    Column("paid_date", Date),
    CheckConstraint("amount_due >= 0", name="amount_due_non_negative"),
    CheckConstraint("amount_paid >= 0", name="amount_paid_non_negative"),
    PrimaryKeyConstraint("customer_id", "due_date"),
)

labels = Table(
    "labels",
    metadata,
    _customer_id(),
    Column("observation_date", Date, nullable=False),
    Column("label", SmallInteger, nullable=False),
    Column("days_to_default", Integer),
    # when the row was stored or last changed (NULL: before this column existed); the
    # new_labels trigger counts rows stored after their customer's last retrain
    Column("ingested_at", DateTime),
    CheckConstraint("label IN (0, 1)", name="label_binary"),
    PrimaryKeyConstraint("customer_id", "observation_date"),
    Index(None, "observation_date"),
)

DATA_TABLES = (customers, transactions, payments, labels)

# --- retraining: the seed's two tables, extended, plus the model registry --------------------

customer_training_status = Table(
    "customer_training_status",
    metadata,
    Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), primary_key=True),
    Column("first_seen", DateTime, nullable=False),
    Column("last_trained", DateTime),
    Column("included_in_training", Boolean, nullable=False, server_default=false()),
)

model_retraining_log = Table(
    "model_retraining_log",
    metadata,
    Column("retrain_id", Integer, primary_key=True, autoincrement=True),
    Column("retrain_date", DateTime, nullable=False),
    Column("customers_trained", Integer),
    Column("samples_trained", Integer),
    Column("auc_score", Float),
    Column("precision_score", Float),
    Column("recall_score", Float),
    Column("f1_score", Float),
    Column("model_version", String(64)),
    Column("trigger_reason", Text),
    Column("training_duration_seconds", Float),
    Column("status", String(16), nullable=False),  # a RunStatus
    Column("promoted", Boolean, nullable=False, server_default=false()),
    Column("error", Text),
    Column("decision", Text),  # the gate's verdict and why
    CheckConstraint(check_in("status", RunStatus), name="status_known"),
    Index(None, "retrain_date"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_version", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("artifact_path", String(1024), nullable=False),  # relative to the model directory
    Column("sha256", String(64), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("auc_score", Float),
    Column("details", JSON, nullable=False),  # metrics, features, parameters, counts, seed
)

# Which customers each version learnt from (the gate compares a challenger with the champion
# only on customers the champion never learnt from), each one's part (fit, validation or the
# gate's holdout) and whether the stored artifact learnt from it.
model_training_customers = Table(
    "model_training_customers",
    metadata,
    Column(
        "model_version",
        String(64),
        ForeignKey("model_versions.model_version"),
        primary_key=True,
    ),
    Column("customer_id", _identifier(CUSTOMER_ID_MAX_LENGTH), primary_key=True),
    Column("part", String(16), nullable=False),  # a TrainingPart
    Column("learnt", Boolean, nullable=False),
    CheckConstraint(check_in("part", TrainingPart), name="part_known"),
)

# One row: the version in service. Every move of it is a row of champion_changes.
model_champion = Table(
    "model_champion",
    metadata,
    Column("slot", SmallInteger, primary_key=True, server_default="1"),
    Column("model_version", String(64), ForeignKey("model_versions.model_version"), nullable=False),
    Column("since", DateTime, nullable=False),
    CheckConstraint("slot = 1", name="single_slot"),
)

champion_changes = Table(
    "champion_changes",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("changed_at", DateTime, nullable=False),
    Column("from_version", String(64)),
    Column("to_version", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text),
    CheckConstraint(check_in("action", ChampionAction), name="action_known"),
)

# Who holds the retraining lock and since when (the lock itself is an advisory or file lock,
# see predelinq.retraining.lock); shown by `predelinq status` while the lock is held.
retraining_lease = Table(
    "retraining_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", DateTime, nullable=False),
)


# Retrain jobs started through the API: any worker can report any job.
retrain_jobs = Table(
    "retrain_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),  # a JobStatus
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("reason", Text),
    Column("actor", String(255), nullable=False),
    Column("model_version", String(64)),
    Column("promoted", Boolean, nullable=False, server_default=false()),
    Column("result", JSON),
    Column("error", Text),
    CheckConstraint(check_in("status", JobStatus), name="status_known"),
    Index(None, "created_at"),
)


# --- monitoring ------------------------------------------------------------------------------

# Every score served: /predict, /predict/batch and `predelinq score` (see
# predelinq.monitoring.predictions). No key: rows are appended, read by customer and date,
# and deleted by age.
predictions = Table(
    "predictions",
    metadata,
    _customer_id(),
    Column("as_of", Date, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("band", String(8), nullable=False),
    Column("served_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),  # a PredictionSource
    Column("request_id", String(36), nullable=False),
    CheckConstraint(check_in("source", PredictionSource), name="source_known"),
    Index(None, "customer_id", "as_of"),
    Index(None, "served_at"),
)

# Each version's reference profile, stored at registration: quantile bins of every feature and
# of the score over its training rows (see predelinq.monitoring.profile).
model_profiles = Table(
    "model_profiles",
    metadata,
    Column(
        "model_version",
        String(64),
        ForeignKey("model_versions.model_version"),
        primary_key=True,
    ),
    Column("created_at", DateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("profile", JSON, nullable=False),
)

# What retraining writes, each table before those it refers to: deleted in this order, it
# forgets every retrain (the benchmarks and tests that need a first retrain again).
RETRAINING_TABLES = (
    customer_training_status,
    model_training_customers,
    model_retraining_log,
    champion_changes,
    model_champion,
    model_profiles,
    model_versions,
)
