"""The evidence behind a plan item's forecast, and the guard against forecasts beyond anything sold.

A forecast is compared with what the SKU sold in the demand model's window: its recent mean, its best
ordinary day and its best promotion day (all in units per day; a weekly history counts a seventh of each
week). The *comparable* day of a sale item is the most it sold on a day: its best promotion day, or its best
ordinary day where that sold more (a promotion that sold little, or nothing, is no bound below an ordinary
day) or it was never promoted. A forecast above ``factor`` times the comparable day (default
:data:`GUARD_FACTOR`) is flagged, and the stock allocated to it is capped at ``ceil(factor x comparable
day)`` units (at least one) before the optimiser runs, so the plan's expected sales and profit stay within
that bound too. A user who trusts the forecast turns the cap off (``PlanRequest.guard_cap``); the flags
stay.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from tools.demand import DemandModel

GUARD_FACTOR = 3.0

IntArray = NDArray[np.int64]


class ForecastEvidence(BaseModel):
    """What one planned SKU sold before, beside the forecast at its sale price (units per day)."""

    sku: str
    basis: str = Field(description="'daily sales' or 'weekly sales / 7' (a weekly history).")
    forecast_units: float = Field(description="Expected demand on the sale day at the sale price, uncapped.")
    recent_mean: float | None = Field(description="Mean units per day over the window's last 28 days.")
    best_ordinary_day: float = Field(description="Most units sold on a day without promotion.")
    best_promotion_day: float | None = Field(description="Most units sold on a promoted day (None: never).")
    ratio_to_recent: float | None
    ratio_to_best_ordinary: float | None
    ratio_to_best_promotion: float | None
    compared_with: str = Field(description="The comparable day: 'best promotion day' or 'best ordinary day'.")
    factor: float = Field(description="The guard's factor: flagged above factor x the comparable day.")
    flagged: bool = Field(description="The forecast exceeds factor x the comparable day.")
    cap_units: int | None = Field(description="The allocation cap the guard applied (None: not capped).")

    @property
    def comparable_ratio(self) -> float | None:
        """The forecast over the comparable day (None: the SKU sold nothing to compare with)."""
        if self.compared_with == "best promotion day":
            return self.ratio_to_best_promotion
        return self.ratio_to_best_ordinary

    @property
    def comparable_day(self) -> float:
        """The units of the comparable day."""
        if self.compared_with == "best promotion day" and self.best_promotion_day is not None:
            return self.best_promotion_day
        return self.best_ordinary_day

    def summary(self) -> str:
        """One line for a person: the forecast, the comparable day and the ratio."""
        comparable = self.comparable_day
        ratio = self.comparable_ratio
        ratio_text = f"{ratio:.1f}x" if ratio is not None else "no sales to compare"
        cap = f"; allocation capped at {self.cap_units:,}" if self.cap_units is not None else "; not capped"
        return (
            f"{self.sku}: forecast {self.forecast_units:,.1f} units vs its {self.compared_with} "
            f"{comparable:,.1f} ({ratio_text}, limit {self.factor:g}x){cap}"
        )


def _ratio(forecast: float, base: float | None) -> float | None:
    if base is None or not math.isfinite(base) or base <= 0:
        return None
    return round(forecast / base, 2)


def comparable_days(model: DemandModel, skus: list[str]) -> NDArray[np.float64]:
    """Each SKU's comparable day (units): the larger of its best promotion and best ordinary days (the best
    ordinary day when never promoted); NaN when unknown."""
    ev = model.evidence[model.rows(skus)]
    promoted = np.isfinite(ev[:, 2])
    return np.asarray(np.where(promoted, np.fmax(ev[:, 2], ev[:, 1]), ev[:, 1]), dtype=np.float64)


def guard_caps(model: DemandModel, skus: list[str], factor: float) -> IntArray:
    """The allocation cap of each SKU: ``ceil(factor x comparable day)``, at least 1; 0 (no cap) where the
    model kept no sales evidence."""
    comparable = comparable_days(model, skus)
    caps = np.maximum(np.ceil(factor * np.nan_to_num(comparable, nan=0.0) - 1e-9), 1.0)
    return np.where(np.isfinite(comparable), caps, 0).astype(np.int64)


def forecast_evidence(
    model: DemandModel, sku: str, forecast_units: float, factor: float, cap_units: int | None
) -> ForecastEvidence | None:
    """The evidence behind ``forecast_units`` of ``sku``; None when the model kept none (fitted before it
    kept sales evidence: refit)."""
    recent, best_ordinary, best_promotion = (float(v) for v in model.evidence[model.rows([sku])[0]])
    if not math.isfinite(best_ordinary):
        return None
    promoted = math.isfinite(best_promotion)
    by_promotion = promoted and best_promotion >= best_ordinary
    comparable = best_promotion if by_promotion else best_ordinary
    return ForecastEvidence(
        sku=sku,
        basis="weekly sales / 7" if model.period_days == 7 else "daily sales",
        forecast_units=round(forecast_units, 2),
        recent_mean=round(recent, 3) if math.isfinite(recent) else None,
        best_ordinary_day=round(best_ordinary, 3),
        best_promotion_day=round(best_promotion, 3) if promoted else None,
        ratio_to_recent=_ratio(forecast_units, recent if math.isfinite(recent) else None),
        ratio_to_best_ordinary=_ratio(forecast_units, best_ordinary),
        ratio_to_best_promotion=_ratio(forecast_units, best_promotion if promoted else None),
        compared_with="best promotion day" if by_promotion else "best ordinary day",
        factor=factor,
        flagged=forecast_units > factor * comparable + 1e-9,
        cap_units=cap_units,
    )
