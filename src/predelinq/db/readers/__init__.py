"""How rows reach Arrow: the bulk read of the observed customers (``read_inputs``) and the
read of a few customers at one date over a pooled connection (``read_at_date``)."""

from predelinq.db.readers.inputs import read_at_date, read_inputs
from predelinq.db.readers.sqlite_child import SQLiteReadError

__all__ = ["SQLiteReadError", "read_at_date", "read_inputs"]
