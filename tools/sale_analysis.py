"""Questions over past sales that the KPI report answers only one sale at a time: plan against actual by
category or brand (where a sale missed, and why), the forecast error of the last sales as a series (is it
getting better?), and a campaign's figures per slot and per unit sold (beside a comparison's verdict).

Every function here reads; the figures come from :func:`tools.campaigns.plan_vs_actual` and
:func:`tools.kpi.kpi_report`, so they agree with ``cli.py report`` and ``cli.py kpi``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import FlashSalePlan, PlanItem, PlanStatus
from tools.campaigns import ItemVsActual, PlanVsActual, plan_vs_actual
from tools.kpi import KpiInputError, kpi_report

GroupBy = Literal["sku", "category", "brand"]


class GroupVsActual(BaseModel):
    """Plan against actual of one SKU, category or brand of a sale."""

    key: str
    items: int
    allocated_units: int
    forecast_units: float
    sold_units: int
    error_units: float = Field(description="sold - forecast")
    wape: float | None = Field(description="sum |sold - forecast| / sum sold over the group's items")
    sell_through: float | None = Field(description="sold / allocated units, a fraction")
    expected_profit_cents: int
    profit_cents: int
    drivers: dict[str, int] = Field(description="items per miss driver (on target, stock-out, price, ...)")
    worst_item: str = Field(description="the item of the group furthest from its forecast, and why")


class SaleBreakdown(BaseModel):
    plan_id: int
    sale_date: dt.date
    by: GroupBy
    wape: float | None
    bias: float | None = Field(description="(forecast - sold) / sold over the sale; > 0: over-forecast")
    sold_units: int
    forecast_units: float
    groups: list[GroupVsActual] = Field(description="worst sell-through first")


def _group(key: str, items: list[ItemVsActual]) -> GroupVsActual:
    sold = sum(i.sold_units for i in items)
    allocated = sum(i.allocated_units for i in items)
    drivers: dict[str, int] = {}
    for item in items:
        drivers[item.driver] = drivers.get(item.driver, 0) + 1
    worst = max(items, key=lambda i: abs(i.error_units))
    return GroupVsActual(
        key=key,
        items=len(items),
        allocated_units=allocated,
        forecast_units=round(sum(i.forecast_units for i in items), 2),
        sold_units=sold,
        error_units=round(sum(i.error_units for i in items), 2),
        wape=round(sum(abs(i.error_units) for i in items) / sold, 4) if sold else None,
        sell_through=round(sold / allocated, 4) if allocated else None,
        expected_profit_cents=sum(i.expected_profit_cents for i in items),
        profit_cents=sum(i.profit_cents for i in items),
        drivers=drivers,
        worst_item=f"{worst.sku}: {worst.driver}, {worst.explanation}",
    )


def sale_breakdown(session: Session, plan_id: int, by: GroupBy, *, today: dt.date) -> SaleBreakdown:
    """Plan against actual of ``plan_id`` per SKU, category or brand, worst sell-through first."""
    pva: PlanVsActual = plan_vs_actual(session, plan_id, today=today)
    groups: dict[str, list[ItemVsActual]] = {}
    for item in pva.items:
        groups.setdefault(getattr(item, by), []).append(item)
    rows = [_group(key, items) for key, items in groups.items()]
    rows.sort(key=lambda g: (g.sell_through if g.sell_through is not None else 2.0, g.key))
    return SaleBreakdown(
        plan_id=pva.plan_id,
        sale_date=pva.sale_date,
        by=by,
        wape=pva.wape,
        bias=pva.bias,
        sold_units=pva.sold_units,
        forecast_units=round(pva.forecast_units, 2),
        groups=rows,
    )


class SaleError(BaseModel):
    plan_id: int
    sale_date: dt.date
    items: int
    forecast_units: float
    sold_units: int
    wape: float | None
    bias: float | None
    stock_outs: int = Field(description="items that sold out (their demand is only known to be higher)")


class ErrorTrend(BaseModel):
    slope_per_sale: float | None = Field(description="least-squares change of WAPE per sale, a fraction")
    p_value: float | None = Field(description="of the slope against no trend (scipy linregress)")
    verdict: str


class ErrorSeries(BaseModel):
    sales: list[SaleError] = Field(description="oldest first")
    trend: ErrorTrend


def _closed_before(session: Session, today: dt.date, last: int) -> list[int]:
    ids = session.scalars(
        select(FlashSalePlan.id)
        .where(FlashSalePlan.status == PlanStatus.CLOSED, FlashSalePlan.sale_date < today)
        .order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
        .limit(last)
    ).all()
    return list(reversed(ids))


def forecast_error_series(session: Session, *, today: dt.date, last: int = 5) -> ErrorSeries:
    """The plan-against-actual error of the last ``last`` closed sales, oldest first, and whether it is
    falling (a least-squares slope of the WAPE per sale with its p-value; 'no clear trend' at p >= 0.1)."""
    if last < 2:
        raise KpiInputError(f"a series needs at least 2 sales, got last={last}")
    sales = []
    for plan_id in _closed_before(session, today, last):
        pva = plan_vs_actual(session, plan_id, today=today)
        sales.append(
            SaleError(
                plan_id=plan_id,
                sale_date=pva.sale_date,
                items=len(pva.items),
                forecast_units=round(pva.forecast_units, 2),
                sold_units=pva.sold_units,
                wape=None if pva.wape is None else round(pva.wape, 4),
                bias=None if pva.bias is None else round(pva.bias, 4),
                stock_outs=sum(1 for i in pva.items if i.stocked_out),
            )
        )
    scored = [(k, s.wape) for k, s in enumerate(sales) if s.wape is not None]
    if len(scored) < 3:
        verdict = f"{len(scored)} closed sale(s) with sales to score: too few for a trend (3 needed)"
        return ErrorSeries(sales=sales, trend=ErrorTrend(slope_per_sale=None, p_value=None, verdict=verdict))
    fit = stats.linregress([k for k, _ in scored], [w for _, w in scored])
    slope, p = float(fit.slope), float(fit.pvalue)
    if p >= 0.1:
        verdict = f"no clear trend over {len(scored)} sales (slope {slope:+.3f} WAPE per sale, p = {p:.2f})"
    else:
        word = "falling: the forecasts are getting better" if slope < 0 else "rising: the forecasts get worse"
        verdict = f"WAPE {word} ({slope:+.3f} per sale, p = {p:.2f}, {len(scored)} sales)"
    return ErrorSeries(
        sales=sales, trend=ErrorTrend(slope_per_sale=round(slope, 4), p_value=round(p, 4), verdict=verdict)
    )


class SideFigures(BaseModel):
    """A campaign side's totals and its figures per plan slot and per unit sold."""

    plan_ids: list[int]
    slots: int = Field(description="plan items over the side's plans")
    units: int
    gmv_cents: int
    gross_profit_cents: int
    profit_per_slot_cents: int | None
    gmv_per_slot_cents: int | None
    profit_per_unit_cents: int | None


def side_figures(session: Session, plan_ids: Sequence[int]) -> SideFigures:
    """Totals of the plans' SKUs on their sale dates, per slot and per unit sold."""
    units = gmv = profit = 0
    for plan_id in plan_ids:  # kpi_report refuses an unknown plan (UnknownPlan)
        total = kpi_report(session, None, None, plan_id=plan_id, counterfactual=False).total
        units += total.units
        gmv += total.gmv_cents
        profit += total.gross_profit_cents
    slots = int(
        session.scalar(select(func.count()).select_from(PlanItem).where(PlanItem.plan_id.in_(list(plan_ids))))
        or 0
    )
    return SideFigures(
        plan_ids=list(plan_ids),
        slots=slots,
        units=units,
        gmv_cents=gmv,
        gross_profit_cents=profit,
        profit_per_slot_cents=round(profit / slots) if slots else None,
        gmv_per_slot_cents=round(gmv / slots) if slots else None,
        profit_per_unit_cents=round(profit / units) if units else None,
    )
