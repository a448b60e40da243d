"""Watch a live sale: per SKU, the sales so far against the forecast's path through the day, the posterior
of its demand, when it will sell out, and a flag (far ahead, far behind, sold out early).

Sales so far are the sale day's order lines of the plan's SKUs before ``at`` (cancelled orders left out, as
in every KPI). The forecast's path is the revision's expected units spread over the day by the shop's own
intraday profile (:mod:`tools.intraday`); a re-planned revision's path starts from what had sold when it
was made. "Far ahead/behind" needs both a ratio (x1.5, x0.5) and a Poisson test (p < 0.05) so that two
units against one expected is not an alarm.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import FlashSalePlan, Order, OrderLine, PlanItem, PlanStatus, Product
from tools.campaigns import poisson_two_sided
from tools.demand import DemandModel, load_demand_model, load_latest_demand_model
from tools.forecast import ForecastGrid
from tools.intraday import HOURS, IntradayProfile, hour_of, posterior_rate, shop_profile
from tools.lifecycle import PlanEventView, live_revision, plan_history, sale_revisions
from tools.optimizer import ladder_prices
from tools.plans import PlanStateError
from tools.signals import active_signals

AHEAD, BEHIND, P_ALARM = 1.5, 0.5, 0.05
#: A SKU that sells out while less than this share of the day's demand was expected sold out early.
EARLY_SHARE = 0.85

Flag = Literal["on track", "far ahead", "far behind", "sold out early", "sold out", "ended"]


class SoldSoFar(BaseModel):
    units: dict[str, int]
    revenue_cents: dict[str, int]
    sold_out_at: dict[str, dt.datetime]

    def exposure(self, sku: str, profile: IntradayProfile, sale_date: dt.date, hour: float) -> float:
        """The share of the day's demand expected while ``sku`` was on sale with stock, up to ``hour``: a SKU
        that sold out stopped telling at the hour it sold out."""
        out_at = self.sold_out_at.get(sku)
        return profile.by(hour_of(out_at, sale_date) if out_at else hour)


def sold_so_far(
    session: Session, sale_date: dt.date, allocation: dict[str, int], at: dt.datetime
) -> SoldSoFar:
    """Units and revenue of each SKU of ``allocation`` on ``sale_date`` before ``at``, and when the running
    total reached the SKU's allocation."""
    start = dt.datetime.combine(sale_date, dt.time.min)
    rows = session.execute(
        select(OrderLine.sku, OrderLine.ts, OrderLine.qty, OrderLine.unit_price_cents)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            OrderLine.sku.in_(list(allocation)),
            OrderLine.ts >= start,
            OrderLine.ts < at,
            Order.is_cancellation.is_(False),
        )
        .order_by(OrderLine.ts, OrderLine.id)
    ).all()
    units = dict.fromkeys(allocation, 0)
    revenue = dict.fromkeys(allocation, 0)
    sold_out: dict[str, dt.datetime] = {}
    for sku, ts, qty, price in rows:
        units[sku] += int(qty)
        revenue[sku] += int(qty) * int(price)
        if sku not in sold_out and allocation[sku] > 0 and units[sku] >= allocation[sku]:
            sold_out[sku] = ts
    return SoldSoFar(units=units, revenue_cents=revenue, sold_out_at=sold_out)


def plan_model(session: Session, plan: FlashSalePlan) -> DemandModel:
    """The demand model the plan was made with (the newest one for a plan saved without it)."""
    if plan.demand_model_id is not None:
        return load_demand_model(session, plan.demand_model_id)
    model = load_latest_demand_model(session)
    if model is None:
        raise PlanStateError("no demand model is stored: run `python cli.py fit`")
    return model


def ladder_grid(
    session: Session, plan: FlashSalePlan, skus: list[str], list_price: np.ndarray
) -> ForecastGrid:
    """The plan's demand model's forecast of ``skus`` on the sale date at every ladder price (featured,
    with the signals active that day)."""
    model = plan_model(session, plan)
    known = set(model.skus)
    missing = [s for s in skus if s not in known]
    if missing:
        raise PlanStateError(f"the plan's demand model does not know {', '.join(missing[:5])}: refit first")
    ladder = tuple(float(x) for x in (plan.constraints or {}).get("ladder") or ())
    if not ladder:
        raise PlanStateError(f"plan {plan.id} stores no discount ladder; it was not made by the optimiser")
    return model.forecast_grid(
        plan.sale_date, skus, ladder_prices(list_price, ladder), True, active_signals(session, plan.sale_date)
    )


class LiveItem(BaseModel):
    sku: str
    title: str
    discount: float
    sale_price_cents: int
    allocated_units: int
    sold_units: int
    revenue_cents: int
    expected_by_now: float = Field(description="Units the forecast's path expected sold before `at`.")
    expected_day: float = Field(description="Units the revision expects sold over the whole day.")
    pace: float | None = Field(description="sold / expected_by_now")
    p_value: float | None = Field(description="Poisson test of sold against expected_by_now (two-sided).")
    demand_day_prior: float = Field(description="The forecast's demand for the day at this price (uncapped).")
    demand_day_posterior: float = Field(description="The same after the sales so far.")
    sold_out_at: dt.datetime | None
    sells_out_at_hour: float | None = Field(
        description="Expected hour of the day it sells out (None: not today)."
    )
    flag: Flag


class LiveStatus(BaseModel):
    sale_id: int = Field(description="The sale's first revision id (names the sale through its revisions).")
    plan_id: int = Field(description="The revision watched (the live one when there is one).")
    revision: int
    status: str
    sale_date: dt.date
    at: dt.datetime
    hour: float
    profile_source: str
    items: list[LiveItem]
    sold_units: int
    expected_by_now: float
    revenue_cents: int
    history: list[PlanEventView]

    def flagged(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item in self.items:
            if item.flag != "on track":
                out.setdefault(item.flag, []).append(item.sku)
        return out


def watched_revision(session: Session, plan_id: int) -> FlashSalePlan:
    """The live revision of the sale, else the newest approved or closed one."""
    live = live_revision(session, plan_id)
    if live is not None:
        return live
    revisions = [
        p for p in sale_revisions(session, plan_id) if p.status in (PlanStatus.APPROVED, PlanStatus.CLOSED)
    ]
    if not revisions:
        raise PlanStateError(
            f"plan {plan_id}'s sale has no approved, live or closed revision: approve and publish it first"
        )
    return revisions[-1]


def simulated_until(history: list[PlanEventView]) -> float | None:
    """The hour the shop's simulator has played the sale to (None when it never played it)."""
    hours = [float(e.detail.get("until_hour", 0)) for e in history if e.action == "simulate"]
    return max(hours) if hours else None


def default_moment(session: Session, plan_id: int, clock_now: dt.datetime) -> dt.datetime:
    """``at`` when none is given: the hour a simulated sale was played to, else the clock within the sale
    day."""
    plan = watched_revision(session, plan_id)
    played = simulated_until(plan_history(session, plan_id))
    start = dt.datetime.combine(plan.sale_date, dt.time.min)
    if played is not None:
        return start + dt.timedelta(hours=played)
    return min(max(clock_now, start), start + dt.timedelta(hours=HOURS))


def revision_start(plan: FlashSalePlan) -> tuple[float, dict[str, int]]:
    """When this revision took over (hour of the sale day) and what each SKU had sold by then."""
    replan = ((plan.constraints or {}).get("inputs") or {}).get("replan") or {}
    return float(replan.get("hour", 0.0)), {k: int(v) for k, v in (replan.get("sold_before") or {}).items()}


def expected_path(
    profile: IntradayProfile, start_hour: float, before: float, expected_day: float, hour: float
) -> float:
    """Units expected sold by ``hour`` when ``before`` had sold at ``start_hour`` and ``expected_day`` are
    expected over the whole day."""
    rest = profile.between(start_hour, HOURS)
    if hour <= start_hour or rest <= 0:
        return float(before)
    return before + (expected_day - before) * profile.between(start_hour, hour) / rest


def live_status(session: Session, plan_id: int, at: dt.datetime) -> LiveStatus:
    """The sale of ``plan_id`` at ``at``: its watched revision's items against their forecast path."""
    plan = watched_revision(session, plan_id)
    hour = hour_of(at, plan.sale_date)
    profile = shop_profile(session, plan.sale_date)
    rows = session.execute(
        select(PlanItem, Product.title, Product.list_price_cents)
        .join(Product, Product.sku == PlanItem.sku)
        .where(PlanItem.plan_id == plan.id)
        .order_by(PlanItem.expected_profit_cents.desc(), PlanItem.sku)
    ).all()
    if not rows:
        raise PlanStateError(f"plan {plan.id} has no items to watch")
    skus = [r[0].sku for r in rows]
    allocation = {r[0].sku: int(r[0].allocated_units) for r in rows}
    sold = sold_so_far(session, plan.sale_date, allocation, at)
    grid = ladder_grid(session, plan, skus, np.array([int(r[2]) for r in rows], dtype=np.int64))
    start_hour, before = revision_start(plan)
    prior, size, exposure, n_sold = [], [], [], []
    for k, (item, _title, _list) in enumerate(rows):
        level = int(np.argmin(np.abs(grid.prices_cents[k] - int(item.sale_price_cents))))
        prior.append(float(grid.mean[k, level]))
        size.append(float(grid.dispersion[k]))
        exposure.append(sold.exposure(item.sku, profile, plan.sale_date, hour))
        n_sold.append(sold.units[item.sku])
    post, _ = posterior_rate(
        np.array(prior), np.array(size), np.array(n_sold), np.array(exposure), clumping=profile.clumping
    )
    items: list[LiveItem] = []
    for k, (item, title, _list) in enumerate(rows):
        n = n_sold[k]
        expected_now = expected_path(
            profile, start_hour, before.get(item.sku, 0), float(item.forecast_units), hour
        )
        left = int(item.allocated_units) - n
        out_at = sold.sold_out_at.get(item.sku)
        sells_out = _sell_out_hour(profile, hour, float(post[k]), left) if left > 0 else None
        p = poisson_two_sided(n, expected_now) if expected_now > 0 else None
        items.append(
            LiveItem(
                sku=item.sku,
                title=str(title),
                discount=float(item.discount_pct) / 100,
                sale_price_cents=int(item.sale_price_cents),
                allocated_units=int(item.allocated_units),
                sold_units=n,
                revenue_cents=sold.revenue_cents[item.sku],
                expected_by_now=round(expected_now, 2),
                expected_day=round(float(item.forecast_units), 2),
                pace=round(n / expected_now, 3) if expected_now > 0 else None,
                p_value=None if p is None else round(p, 4),
                demand_day_prior=round(prior[k], 2),
                demand_day_posterior=round(float(post[k]), 2),
                sold_out_at=out_at,
                sells_out_at_hour=None if sells_out is None else round(sells_out, 1),
                flag="ended"
                if start_hour > 0 and int(item.allocated_units) <= before.get(item.sku, 0)
                else _flag(item, n, expected_now, p, out_at, profile, plan.sale_date),
            )
        )
    return LiveStatus(
        sale_id=int(plan.root_id or plan.id),
        plan_id=plan.id,
        revision=plan.revision,
        status=plan.status.value,
        sale_date=plan.sale_date,
        at=at,
        hour=round(hour, 2),
        profile_source=profile.source,
        items=items,
        sold_units=sum(n_sold),
        expected_by_now=round(sum(i.expected_by_now for i in items), 2),
        revenue_cents=sum(i.revenue_cents for i in items),
        history=plan_history(session, plan.id),
    )


def _sell_out_hour(profile: IntradayProfile, hour: float, day_rate: float, left: int) -> float | None:
    """The hour at which ``left`` units are expected sold at ``day_rate`` units a day from ``hour`` on."""
    if day_rate <= 0 or day_rate * profile.between(hour, HOURS) < left:
        return None
    lo, hi = hour, float(HOURS)
    for _ in range(40):
        mid = (lo + hi) / 2
        if day_rate * profile.between(hour, mid) >= left:
            hi = mid
        else:
            lo = mid
    return hi


def _flag(  # noqa: PLR0917
    item: PlanItem,
    sold: int,
    expected_now: float,
    p: float | None,
    out_at: dt.datetime | None,
    profile: IntradayProfile,
    sale_date: dt.date,
) -> Flag:
    if out_at is not None:
        return "sold out early" if profile.by(hour_of(out_at, sale_date)) < EARLY_SHARE else "sold out"
    if p is not None and p < P_ALARM:
        if sold >= AHEAD * expected_now:
            return "far ahead"
        if sold <= BEHIND * expected_now:
            return "far behind"
    return "on track"
