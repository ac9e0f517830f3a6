"""Database layer: tables, engine, migrations."""

from predelinq.db.engine import open_database
from predelinq.db.schema import customers, labels, metadata, payments, transactions

__all__ = ["customers", "labels", "metadata", "open_database", "payments", "transactions"]
