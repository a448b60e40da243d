"""Market signals as bounded demand multipliers, with provenance.

A :class:`SignalEffect` is the typed form of a ``market_signal`` row: a scope (one SKU, a category or a
brand), a direction, a multiplier, a confidence and a validity window. :func:`signal_multipliers` turns the
signals active on a date into one multiplier per SKU and lists, per SKU, which signals touched it.

How a signal becomes a multiplier (so that an extracted signal can never blow up a forecast):

* the direction decides the side of 1: ``up`` gives ``max(m, 1/m)``, ``down`` gives ``min(m, 1/m)``,
  ``neutral`` gives 1 (the signal is still reported as having touched the SKU);
* the confidence shrinks it toward 1 in log space: ``m_eff = m ** confidence``;
* each effect is clipped to :data:`EFFECT_BOUNDS` and the product of all effects on a SKU to
  :data:`COMBINED_BOUNDS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import MarketSignal, SignalDirection, SignalScope

EFFECT_BOUNDS: tuple[float, float] = (0.5, 2.0)
COMBINED_BOUNDS: tuple[float, float] = (0.4, 2.5)


class SignalEffect(BaseModel):
    """One market signal, as the demand model applies it."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="market_signal id (0 for a hypothetical signal not stored yet).")
    scope: SignalScope = Field(description="What the signal applies to: one SKU, a category or a brand.")
    scope_value: str = Field(min_length=1, description="The SKU, category name or brand name.")
    direction: SignalDirection = Field(description="Whether demand goes up, down or is unaffected.")
    multiplier: float = Field(gt=0, description="Demand multiplier, e.g. 1.3 for +30 %.")
    confidence: float = Field(ge=0, le=1, description="0..1; shrinks the multiplier toward 1.")
    valid_from: dt.date = Field(description="First day the signal applies (inclusive).")
    valid_to: dt.date = Field(description="Last day the signal applies (inclusive).")
    source_ids: list[int | str] = Field(default_factory=list, description="News/review ids it came from.")
    extracted_by: str = Field(default="unknown", description="Model or rule that extracted it.")

    @model_validator(mode="after")
    def _window_is_ordered(self) -> SignalEffect:
        if self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    def active_on(self, date: dt.date) -> bool:
        return self.valid_from <= date <= self.valid_to

    def effective_multiplier(self) -> float:
        """The bounded multiplier this signal applies on its own (see the module docstring)."""
        if self.direction is SignalDirection.NEUTRAL:
            return 1.0
        magnitude = max(self.multiplier, 1.0 / self.multiplier)
        signed = magnitude if self.direction is SignalDirection.UP else 1.0 / magnitude
        return float(np.clip(signed**self.confidence, *EFFECT_BOUNDS))

    @classmethod
    def from_row(cls, row: MarketSignal) -> SignalEffect:
        return cls(
            id=row.id,
            scope=SignalScope(row.scope),
            scope_value=row.scope_value,
            direction=SignalDirection(row.direction),
            multiplier=row.multiplier,
            confidence=row.confidence,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            source_ids=list(row.source_ids or []),
            extracted_by=row.extracted_by,
        )


def active_signals(session: Session, date: dt.date) -> list[SignalEffect]:
    """The stored market signals whose validity window contains ``date``, oldest id first.

    Rows that cannot be applied (non-positive multiplier, confidence outside 0..1, reversed window) are
    skipped rather than failing the forecast.
    """
    rows = session.scalars(
        select(MarketSignal)
        .where(MarketSignal.valid_from <= date, MarketSignal.valid_to >= date)
        .order_by(MarketSignal.id)
    ).all()
    effects: list[SignalEffect] = []
    for row in rows:
        try:
            effects.append(SignalEffect.from_row(row))
        except ValueError:
            continue
    return effects


def _norm(value: str) -> str:
    return value.strip().casefold()


def signal_multipliers(
    signals: Sequence[SignalEffect],
    skus: Sequence[str],
    categories: Sequence[str],
    brands: Sequence[str],
    date: dt.date,
) -> tuple[NDArray[np.float64], list[list[int]]]:
    """Combined bounded multiplier per SKU on ``date`` and the ids of the signals that touched each SKU.

    ``skus``, ``categories`` and ``brands`` are aligned (one entry per SKU). Scope values match
    case-insensitively. Signals outside their validity window on ``date`` are ignored.
    """
    n = len(skus)
    if len(categories) != n or len(brands) != n:
        raise ValueError(
            f"skus, categories and brands must be aligned: {n}, {len(categories)}, {len(brands)} given"
        )
    log_mult = np.zeros(n, dtype=np.float64)
    touched: list[list[int]] = [[] for _ in range(n)]
    if not signals or n == 0:
        return np.ones(n, dtype=np.float64), touched

    keys = {
        SignalScope.SKU: np.array([_norm(s) for s in skus], dtype=object),
        SignalScope.CATEGORY: np.array([_norm(c) for c in categories], dtype=object),
        SignalScope.BRAND: np.array([_norm(b) for b in brands], dtype=object),
    }
    for signal in signals:
        if not signal.active_on(date):
            continue
        rows = np.flatnonzero(keys[signal.scope] == _norm(signal.scope_value))
        if rows.size == 0:
            continue
        log_mult[rows] += np.log(signal.effective_multiplier())
        for i in rows:
            touched[int(i)].append(signal.id)
    combined = np.clip(np.exp(log_mult), *COMBINED_BOUNDS)
    return combined, touched
