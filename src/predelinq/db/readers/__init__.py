"""How rows reach Arrow, built from the engine: the bulk read of the observed customers
(``read_inputs``: the CLI, the library, training) and the read of a few customers at one date
over a connection the caller holds (``read_at_date``: the API, always in its own process).
The columns read are declared once, in ``columns.py``."""

from predelinq.db.readers.at_date import read_at_date
from predelinq.db.readers.inputs import read_inputs
from predelinq.db.readers.sqlite_child import SQLiteReadError

__all__ = ["SQLiteReadError", "read_at_date", "read_inputs"]
