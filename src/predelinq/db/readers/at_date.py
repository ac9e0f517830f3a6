"""The rows that features of a few customers at one date need, read over the caller's
connection: the API's read.

It runs in the caller's process and thread, over a connection the caller already holds (the
API's pool): no new connection, no temporary table, no child process, whatever the number
of customers. The ids are bound parameters, ``IDS_PER_QUERY`` at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import pyarrow as pa
from sqlalchemy import BindParameter, Connection, Date, DateTime, bindparam, text

from predelinq.db.readers.arrow import concat_parts, fetch_arrow
from predelinq.db.readers.columns import CUSTOMERS, PAYMENTS, SCHEMAS, TRANSACTIONS, select_list

# Ids bound in one query. SQLite before 3.32 took at most 999 parameters (today's take
# 32,766, PostgreSQL 65,535); the API reads at most 256 customers at a time, in one query.
IDS_PER_QUERY = 900
IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
QUERIES = {
    CUSTOMERS: text(
        f"SELECT {select_list(CUSTOMERS)} FROM customers WHERE customer_id IN :ids"
    ).bindparams(IDS),
    # Every transaction before t, as the bulk read: features over the whole history (a
    # running balance) need all of them.
    TRANSACTIONS: text(
        f"SELECT {select_list(TRANSACTIONS)} FROM transactions "
        "WHERE customer_id IN :ids AND txn_time < :t"
    ).bindparams(IDS, bindparam("t", type_=DateTime())),
    PAYMENTS: text(
        f"SELECT {select_list(PAYMENTS)} FROM payments "
        "WHERE customer_id IN :ids AND due_date < :day"
    ).bindparams(IDS, bindparam("day", type_=Date())),
}


def read_at_date(
    connection: Connection, customer_ids: Sequence[str], as_of: date
) -> dict[str, pa.Table]:
    """The rows of customers, transactions and payments that features at ``as_of`` need, as
    ``read_inputs`` returns them, read over ``connection``."""
    schemas = SCHEMAS[connection.dialect.name]  # PostgreSQL: datetimes; SQLite: text
    t = datetime.combine(as_of, datetime.min.time())
    parts = []
    for start in range(0, max(len(customer_ids), 1), IDS_PER_QUERY):
        parameters = {
            "ids": list(customer_ids[start : start + IDS_PER_QUERY]),
            "t": t,
            "day": as_of,
        }
        parts.append(
            {
                name: fetch_arrow(connection.execute(query, parameters), schemas[name])
                for name, query in QUERIES.items()
            }
        )
    return concat_parts(parts)
