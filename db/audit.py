"""The audit log: the one function that writes ``audit_log``.

Every tool call, model exchange and approval goes through :func:`record_audit`, whoever makes it (the chat
agent, the Slack bot, the daily draft). Inputs and outputs are stored as JSON; values JSON cannot hold
(dates, Decimals, numpy numbers, pydantic models) are converted, never dropped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from db.models import AuditLog
from db.sqlvalues import utc_now

MAX_TEXT_CHARS = 20_000


def jsonable(value: Any, *, max_text: int = MAX_TEXT_CHARS) -> Any:
    """A JSON-serialisable copy of ``value`` (long strings are cut to ``max_text`` characters)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= max_text else value[:max_text] + f"... [{len(value) - max_text} more]"
    if isinstance(value, enum.Enum):
        return jsonable(value.value, max_text=max_text)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"), max_text=max_text)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), max_text=max_text)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, max_text=max_text) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, max_text=max_text) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return jsonable(tolist(), max_text=max_text)
    return jsonable(str(value), max_text=max_text)


def _as_object(value: Any) -> dict[str, Any]:
    converted = jsonable(value)
    return converted if isinstance(converted, dict) else {"value": converted}


def record_audit(
    session: Session,
    *,
    actor: str,
    channel: str,
    kind: str,
    name: str,
    inputs: Any,
    outputs: Any,
    latency_ms: float | None,
    session_id: str | None,
    error: str | None = None,
    ts: dt.datetime | None = None,
) -> AuditLog:
    """Add one audit row to ``session`` (the caller owns the transaction) and return it.

    ``kind`` is e.g. ``"tool"``, ``"llm"``, ``"answer"``, ``"approval"``; ``name`` the tool or model name;
    ``channel`` where the request came from (``"cli"``, ``"slack"``, ``"draft"``, ``"eval"``).
    ``ts`` defaults to now (UTC, stored without time zone like every timestamp of the schema).
    """
    if not actor or not channel or not kind or not name:
        raise ValueError("record_audit needs a non-empty actor, channel, kind and name")
    row = AuditLog(
        ts=ts or utc_now(),
        actor=actor[:100],
        channel=channel[:30],
        kind=kind[:30],
        name=name[:200],
        session_id=session_id[:100] if session_id else None,
        inputs=_as_object(inputs),
        outputs=_as_object(outputs),
        latency_ms=None if latency_ms is None else float(latency_ms),
        error=error,
    )
    session.add(row)
    return row
