"""Forecasts of named SKUs at given discounts from the stored demand model, with their uncertainty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tools.catalog import get_product
from tools.demand import DemandModelError, load_latest_demand_model
from tools.signals import active_signals


class ForecastPoint(BaseModel):
    discount: float = Field(description="Fraction off the list price (0.2 = 20 % off).")
    price_cents: int
    expected_units: float
    p10_units: float = Field(description="10 % quantile of the day's units.")
    p90_units: float = Field(description="90 % quantile of the day's units.")


class SkuForecast(BaseModel):
    sku: str
    list_price_cents: int
    elasticity: float
    base_units_per_day: float
    flash_lift: float
    signal_ids: list[int] = Field(description="Market signals applied to this SKU's forecast.")
    points: list[ForecastPoint]


class ForecastResult(BaseModel):
    date: dt.date
    demand_model_id: int | None
    featured: bool
    forecasts: list[SkuForecast]


def forecast_skus(
    session: Session,
    skus: Sequence[str],
    discounts: Sequence[float],
    on: dt.date,
    *,
    featured: bool = True,
    use_signals: bool = True,
) -> ForecastResult:
    """Expected units (and the 10 %/90 % quantiles) of each SKU at each discount off its list price."""
    model = load_latest_demand_model(session)
    if model is None:
        raise DemandModelError("no demand model has been fitted yet: run `python cli.py fit` first")
    products = [get_product(session, sku) for sku in skus]
    lists = np.array([p.list_price_cents for p in products], dtype=np.int64)
    levels = np.array(discounts, dtype=float)
    prices = np.maximum(1, np.rint(lists[:, None] * (1.0 - levels[None, :]))).astype(np.int64)
    signals = active_signals(session, on) if use_signals else None
    grid = model.forecast_grid(on, list(skus), prices, featured=featured, signals=signals)
    p10, p90 = grid.quantile(0.1), grid.quantile(0.9)
    out = []
    for i, product in enumerate(products):
        params = model.sku_params(product.sku)
        out.append(
            SkuForecast(
                sku=product.sku,
                list_price_cents=product.list_price_cents,
                elasticity=round(params.elasticity, 3),
                base_units_per_day=round(params.base_units_per_day, 3),
                flash_lift=round(params.flash_lift, 3),
                signal_ids=list(grid.signal_ids[i]),
                points=[
                    ForecastPoint(
                        discount=float(d),
                        price_cents=int(prices[i, j]),
                        expected_units=round(float(grid.mean[i, j]), 2),
                        p10_units=float(p10[i, j]),
                        p90_units=float(p90[i, j]),
                    )
                    for j, d in enumerate(levels)
                ],
            )
        )
    return ForecastResult(date=on, demand_model_id=model.id, featured=featured, forecasts=out)
