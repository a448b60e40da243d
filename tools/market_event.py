"""A hypothetical market event for a what-if ("a competitor is dumping prices on audio: what changes
tomorrow, and how sure are you?"): a category, brand or SKU whose demand is multiplied, and optionally a
competitor price the match-competitor rule then meets. Nothing is stored: the event changes the candidates
of one comparison only, and the result carries the forecast's 80 % interval for every SKU it touches.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from db.errors import FlashSaleError
from tools.optimizer import Candidates, PlanResult


class NoSuchScope(FlashSaleError):
    """The event names no candidate SKU, category or brand."""


class MarketEvent(BaseModel):
    """What a person asks to suppose, for one comparison."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["sku", "category", "brand"]
    value: str = Field(min_length=1, max_length=100)
    multiplier: float = Field(
        gt=0.0, le=10.0, description="Demand of the touched SKUs times this (0.7 = 30 % less) at every price."
    )
    competitor_price_cents: int | None = Field(
        None, gt=0, description="A competitor's price on the touched SKUs (met when match_competitor is on)."
    )

    def describe(self) -> str:
        price = (
            f", competitor at {self.competitor_price_cents / 100:.2f}"
            if self.competitor_price_cents is not None
            else ""
        )
        return f"market event: {self.scope} {self.value} demand x{self.multiplier:g}{price}"

    def rows(self, cand: Candidates) -> list[int]:
        labels = {"sku": np.array(cand.skus), "category": cand.category, "brand": cand.brand}[self.scope]
        rows = [int(i) for i in np.flatnonzero(np.char.lower(labels.astype(str)) == self.value.lower())]
        if not rows:
            raise NoSuchScope(
                f"no candidate of the sale is in {self.scope} {self.value!r}: find it with search_products"
            )
        return rows


def with_event(cand: Candidates, event: MarketEvent) -> Candidates:
    """``cand`` with the event's demand multiplier (and competitor price) on the SKUs it touches."""
    rows = event.rows(cand)
    mean = cand.grid.mean.copy()
    mean[rows] *= event.multiplier
    grid = dataclasses.replace(
        cand.grid, mean=mean, meta={**cand.grid.meta, "market_event": event.describe()}
    )
    competitor = cand.competitor_price_cents
    if event.competitor_price_cents is not None:
        assert competitor is not None  # Candidates fills it in __post_init__
        competitor = competitor.copy()
        competitor[rows] = event.competitor_price_cents
    return dataclasses.replace(cand, grid=grid, competitor_price_cents=competitor)


class AffectedSku(BaseModel):
    """One SKU the event touches that either plan features: its forecast at its sale price, with and
    without the event, each with the forecast's 80 % interval."""

    sku: str
    in_base: bool
    in_alternative: bool
    discount: float = Field(description="the alternative's discount (the base's when it left the plan)")
    forecast_units: float
    forecast_low: float = Field(description="10 % quantile of demand")
    forecast_high: float = Field(description="90 % quantile of demand")
    forecast_units_with_event: float
    forecast_low_with_event: float
    forecast_high_with_event: float


def affected_skus(
    cand: Candidates, event: MarketEvent, base: PlanResult, alternative: PlanResult | None
) -> list[AffectedSku]:
    rows = set(event.rows(cand))
    base_lv = {it.sku: it.level for it in base.items}
    alt_lv = {it.sku: it.level for it in alternative.items} if alternative is not None else {}
    touched = [i for i, sku in enumerate(cand.skus) if i in rows and (sku in base_lv or sku in alt_lv)]
    if not touched:
        return []
    before = cand.grid.subset(touched)
    after = with_event(cand, event).grid.subset(touched)
    q_before, q_after = before.quantiles((0.1, 0.9)), after.quantiles((0.1, 0.9))
    out = []
    for k, i in enumerate(touched):
        sku = cand.skus[i]
        level = alt_lv.get(sku, base_lv.get(sku, 0))
        out.append(
            AffectedSku(
                sku=sku,
                in_base=sku in base_lv,
                in_alternative=sku in alt_lv,
                discount=cand.ladder[level],
                forecast_units=round(float(before.mean[k, level]), 2),
                forecast_low=float(q_before[0.1][k, level]),
                forecast_high=float(q_before[0.9][k, level]),
                forecast_units_with_event=round(float(after.mean[k, level]), 2),
                forecast_low_with_event=float(q_after[0.1][k, level]),
                forecast_high_with_event=float(q_after[0.9][k, level]),
            )
        )
    return out
