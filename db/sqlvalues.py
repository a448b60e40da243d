"""Values as the schema stores them: timestamps are UTC without a time zone, and dates that come back from
SQL aggregates are normalised (SQLite returns them as text where PostgreSQL returns ``date``/``datetime``)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def as_date(value: Any) -> dt.date:
    """A ``date`` from a date, a datetime or ISO text (as SQLite returns ``date(ts)`` or ``max(ts)``)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def as_datetime(value: Any) -> dt.datetime:
    """A ``datetime`` from a datetime or ISO text."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def utc_now() -> dt.datetime:
    """Now in UTC without time zone, as the schema stores timestamps (the one real-time clock)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
