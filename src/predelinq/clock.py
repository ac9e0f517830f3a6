"""Time, in one place: every timestamp predelinq stores is naive UTC (the database columns are
``TIMESTAMP WITHOUT TIME ZONE`` on both engines)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, as naive UTC: the form every stored timestamp takes."""
    return datetime.now(UTC).replace(tzinfo=None)
