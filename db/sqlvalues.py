"""Normalise values that come back from SQL aggregates: SQLite returns dates as text where PostgreSQL
returns ``date``/``datetime`` objects."""

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
