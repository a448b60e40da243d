"""Re-optimise the rest of a live sale day from the sales so far, inside the envelope a person approved.

:func:`rest_of_day` is the pure step (the benchmark calls it on the simulator): each SKU's demand is its
posterior given the units sold while a share of the day's demand was expected (:mod:`tools.intraday`),
scaled to the share of the day left; the optimiser then picks, per SKU of the approved plan, a ladder
discount for the remaining hours, its allocation, or ends it early. The envelope: only the approved plan's
SKUs, the same discount ladder and rules (margins, floors, competitor match, category and brand caps), the
approved markdown budget less what the sales so far spent, each SKU's stock as at planning less what it
sold, and no more units on sale in all than the person approved.

:func:`replan_plan` does this for a live plan in the database and saves the result as a new *draft
revision*: nothing changes in the shop until a person approves and publishes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import FlashSalePlan, PlanItem, Product
from tools.forecast import ForecastGrid
from tools.intraday import HOURS, hour_of, posterior_rate, shop_profile
from tools.lifecycle import (
    get_plan_row,
    live_revision,
    new_revision_fields,
    record_event,
    root_of,
    supersede_open_drafts,
)
from tools.live_status import ladder_grid, sold_so_far
from tools.optimizer import (
    Candidates,
    ExtraRow,
    InfeasiblePlan,
    ObjectiveWeights,
    PlanConstraints,
    PlanItemResult,
    PlanResult,
    SolverOptions,
    compute_coefficients,
    solve_plan,
)
from tools.plans import PlanStateError, save_draft_plan

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
#: The last hour at which a re-plan is still worth making (later, too little of the day is left).
LAST_HOUR = 23.0


@dataclasses.dataclass(frozen=True)
class RestOfDay:
    """A re-plan of the remaining hours: per SKU of the plan, its ladder level (-1: ended) and its
    allocation for the whole day (units sold so far + units for the rest)."""

    levels: IntArray
    allocation: IntArray
    expected_rest_units: FloatArray
    multiplier: FloatArray  # posterior mean / prior mean of the day's demand
    result: PlanResult | None  # None when nothing is left to sell


def rest_of_day(  # noqa: PLR0917
    cand: Candidates,
    levels: IntArray,
    sold: IntArray,
    exposure: FloatArray,
    share_left: float,
    constraints: PlanConstraints,
    weights: ObjectiveWeights,
    *,
    pool_units: int,
    markdown_spent_cents: float = 0.0,
    options: SolverOptions | None = None,
    clumping: float = 1.0,
) -> RestOfDay:
    """Re-optimise the rest of the day for the plan's SKUs ``cand`` (full-day forecast at every ladder
    price, stock as at planning), now at ladder ``levels`` (-1: not on sale) with ``sold`` units sold while
    ``exposure`` of each SKU's day was expected, ``share_left`` of the day to come; units arrive with
    ``clumping`` (:func:`tools.intraday.posterior_rate`)."""
    n = cand.n
    levels = np.asarray(levels, dtype=np.int64)
    sold = np.asarray(sold, dtype=np.int64)
    grid = cand.grid
    at = np.where(levels >= 0, levels, 0)
    prior = grid.mean[np.arange(n), at]
    post, size = posterior_rate(prior, grid.dispersion, sold.astype(np.float64), exposure, clumping=clumping)
    mult = np.where(prior > 0, post / np.maximum(prior, 1e-12), 1.0)
    on_hand_left = np.maximum(cand.on_hand - sold, 0)
    cap = cand.max_units if cand.max_units is not None else np.zeros(n, dtype=np.int64)
    cap_left = np.where(cap > 0, cap - sold, 0)
    no_room = (cap > 0) & (cap_left <= 0)
    pool_left = int(pool_units - sold.sum())
    empty = RestOfDay(np.full(n, -1), sold.copy(), np.zeros(n), mult, None)
    if share_left <= 1e-6 or pool_left <= 0 or bool(np.all(no_room | (on_hand_left <= 0))):
        return empty
    rest_grid = ForecastGrid(
        skus=list(cand.skus),
        prices_cents=grid.prices_cents,
        mean=grid.mean * mult[:, None] * share_left,
        dispersion=size,
        signal_ids=grid.signal_ids,
        model_id=grid.model_id,
        meta={**grid.meta, "rest_of_day": share_left},
    )
    rest = dataclasses.replace(
        cand,
        grid=rest_grid,
        on_hand=on_hand_left,
        max_units=np.where(no_room, 1, cap_left),
        excess_units=None if cand.excess_units is None else np.maximum(cand.excess_units - sold, 0.0),
    )
    budget = constraints.markdown_budget_cents
    rest_constraints = constraints.model_copy(
        update={
            "slots": min(constraints.slots or n, n),
            "pinned": [],
            "excluded": sorted({s for s, x in zip(cand.skus, no_room, strict=True) if x}),
            "markdown_budget_cents": None if budget is None else max(int(budget - markdown_spent_cents), 0),
            "category_min": {},
        }
    )
    coef = compute_coefficients(rest, rest_constraints, weights)
    pool = ExtraRow(
        "stock_pool",
        coef.allocated.astype(np.float64),
        ub=float(pool_left),
        label="the units approved for the sale",
    )
    try:
        result = solve_plan(
            rest,
            rest_constraints,
            weights,
            options or SolverOptions(deterministic=True, time_limit_s=20.0),
            extra_rows=[pool],
            coefficients=coef,
        )
    except InfeasiblePlan:
        return empty
    new_levels = np.full(n, -1, dtype=np.int64)
    allocation = sold.copy()
    expected = np.zeros(n)
    pos = cand.index()
    for it in result.items:
        i = pos[it.sku]
        new_levels[i] = it.level
        allocation[i] = sold[i] + it.allocated_units
        expected[i] = it.expected_units
    return RestOfDay(new_levels, allocation, expected, mult, result)


# ---- the database side -------------------------------------------------------------------------------------


class ReplanChange(BaseModel):
    sku: str
    action: Literal["keep", "deeper", "shallower", "more stock", "less stock", "end early", "ended"]
    discount_before: float
    discount_after: float | None = Field(description="None: ended for the rest of the day.")
    allocated_before: int
    allocated_after: int
    sold_so_far: int
    demand_multiplier: float = Field(
        description="Posterior / prior demand of the day, from the sales so far."
    )


class ReplanResult(BaseModel):
    sale_id: int
    parent_id: int
    revision_id: int
    revision: int
    at: dt.datetime
    hour: float
    share_left: float
    changes: list[ReplanChange]
    expected_profit_cents: int = Field(description="Realised so far + expected for the rest, new revision.")
    envelope: dict[str, Any]


def _plan_candidates(session: Session, plan: FlashSalePlan) -> tuple[Candidates, list[PlanItem]]:
    """The plan's SKUs as candidates: stock and rules as stored at planning, forecast from its model."""
    inputs = (plan.constraints or {}).get("inputs") or {}
    columns = inputs.get("columns") or {}
    if not columns.get("sku"):
        raise PlanStateError(
            f"plan {plan.id} stores no optimiser inputs (stock, costs), so it cannot be re-planned; plans "
            "made by `plan`, the daily draft or the assistant store them"
        )
    items = list(session.scalars(select(PlanItem).where(PlanItem.plan_id == plan.id).order_by(PlanItem.sku)))
    pos = {s: i for i, s in enumerate(columns["sku"])}
    missing = [it.sku for it in items if it.sku not in pos]
    if missing:
        raise PlanStateError(f"plan {plan.id}'s stored inputs lack {', '.join(missing[:5])}")
    rows = [pos[it.sku] for it in items]

    def col(name: str, dtype: Any, default: Any = 0) -> NDArray[Any]:
        values = columns.get(name) or []
        return np.array([values[r] if r < len(values) else default for r in rows], dtype=dtype)

    skus = [it.sku for it in items]
    list_price = col("list_price_cents", np.int64)
    titles = dict(session.execute(select(Product.sku, Product.title).where(Product.sku.in_(skus))).all())
    cand = Candidates(
        skus=skus,
        category=col("category", np.str_, ""),
        brand=col("brand", np.str_, ""),
        cost_cents=col("cost_cents", np.int64),
        list_price_cents=list_price,
        on_hand=col("on_hand", np.int64),
        grid=ladder_grid(session, plan, skus, list_price),
        ladder=tuple(inputs.get("ladder") or plan.constraints["ladder"]),
        safety_stock=col("safety_stock", np.int64),
        competitor_price_cents=col("competitor_price_cents", np.int64),
        price_floor_cents=col("price_floor_cents", np.int64),
        excess_units=col("excess_units", np.float64, 0.0),
        max_units=col("max_units", np.int64),
        titles=[str(titles.get(s, s)) for s in skus],
    )
    return cand, items


def _stored_constraints(plan: FlashSalePlan) -> PlanConstraints:
    fields = set(PlanConstraints.model_fields)
    return PlanConstraints.model_validate({k: v for k, v in (plan.constraints or {}).items() if k in fields})


def _with_stock_now(cand: Candidates, sold: IntArray, stock_now: dict[str, int]) -> Candidates:
    """``cand`` whose stock as at planning is what sold plus what the shop reports left, for those SKUs."""
    if not stock_now:
        return cand
    index = cand.index()
    on_hand = cand.on_hand.copy()
    for sku, units in stock_now.items():
        if sku not in index:
            raise PlanStateError(f"{sku} is not in the live plan (its SKUs: {', '.join(cand.skus[:10])})")
        if units < 0:
            raise PlanStateError(f"{sku}: {units} units left is not a stock level (0 or more)")
        on_hand[index[sku]] = int(sold[index[sku]]) + units
    return dataclasses.replace(cand, on_hand=on_hand)


def replan_plan(
    session: Session,
    plan_id: int,
    *,
    at: dt.datetime,
    created_by: str,
    channel: str = "cli",
    stock_now: dict[str, int] | None = None,
) -> ReplanResult:
    """Re-plan the rest of the day of ``plan_id``'s live sale at ``at`` and save it as a draft revision.

    ``stock_now``: units the shop reports still in its warehouse per SKU (a supply problem, a recount);
    those SKUs get no more than that for the rest of the day."""
    plan = live_revision(session, plan_id)
    if plan is None:
        row = get_plan_row(session, plan_id)
        raise PlanStateError(
            f"plan {plan_id} is {row.status.value} and its sale has no live revision: only a live sale is "
            "re-planned (publish an approved plan first)"
        )
    hour = hour_of(at, plan.sale_date)
    if at < dt.datetime.combine(plan.sale_date, dt.time.min) or hour >= LAST_HOUR:
        raise PlanStateError(
            f"at {at:%Y-%m-%d %H:%M} the sale of {plan.sale_date} is "
            f"{'not started' if hour <= 0 else 'nearly over'}: a re-plan needs a time between 00:00 and "
            f"{int(LAST_HOUR)}:00 of the sale day (--at HH:MM)"
        )
    cand, items = _plan_candidates(session, plan)
    profile = shop_profile(session, plan.sale_date)
    allocation = {it.sku: int(it.allocated_units) for it in items}
    sales = sold_so_far(session, plan.sale_date, allocation, at)
    sold = np.array([sales.units[s] for s in cand.skus], dtype=np.int64)
    cand = _with_stock_now(cand, sold, stock_now or {})
    exposure = np.array([sales.exposure(s, profile, plan.sale_date, hour) for s in cand.skus])
    ladder = np.asarray(cand.ladder)
    levels = np.array([int(np.argmin(np.abs(ladder - float(it.discount_pct) / 100))) for it in items])
    constraints = _stored_constraints(plan)
    weights = ObjectiveWeights.model_validate((plan.objective or {}).get("weights") or {})
    spent = float(((cand.list_price_cents - np.array([it.sale_price_cents for it in items])) * sold).sum())
    pool = int(sum(allocation.values()))
    share_left = profile.between(hour, HOURS)
    rest = rest_of_day(
        cand,
        levels,
        sold,
        exposure,
        share_left,
        constraints,
        weights,
        pool_units=pool,
        markdown_spent_cents=spent,
        clumping=profile.clumping,
    )
    new_items, changes = _revised_items(cand, items, rest, sold, sales.revenue_cents, hour)
    result = _revised_result(rest, new_items, constraints, weights, cand)
    inputs = dict((plan.constraints or {}).get("inputs") or {})
    envelope = {
        "skus": len(items),
        "ladder": list(cand.ladder),
        "markdown_budget_cents": constraints.markdown_budget_cents,
        "markdown_spent_cents": round(spent),
        "units_approved": pool,
    }
    inputs["replan"] = {
        "parent_id": plan.id,
        "hour": round(hour, 3),
        "sold_before": {s: int(x) for s, x in zip(cand.skus, sold, strict=True)},
        "demand_multiplier": {s: round(float(m), 4) for s, m in zip(cand.skus, rest.multiplier, strict=True)},
        "envelope": envelope,
        "stock_reported": dict(stock_now or {}),
    }
    revision_id = save_draft_plan(
        session,
        result,
        sale_date=plan.sale_date,
        inputs=inputs,
        created_by=created_by,
        notes=f"Re-plan of plan {plan.id} (revision {plan.revision}) at {at:%H:%M} from the sales so far.",
    )
    row = get_plan_row(session, revision_id)
    for key, value in new_revision_fields(session, plan.id).items():
        setattr(row, key, value)
    row.demand_model_id = plan.demand_model_id
    session.flush()
    supersede_open_drafts(session, root_of(plan), revision_id, actor=created_by, now=at, channel=channel)
    record_event(
        session,
        plan,
        "replan",
        actor=created_by,
        now=at,
        channel=channel,
        detail={
            "revision_id": revision_id,
            "hour": round(hour, 2),
            "changes": [c.model_dump() for c in changes],
        },
    )
    session.flush()
    return ReplanResult(
        sale_id=root_of(plan),
        parent_id=plan.id,
        revision_id=revision_id,
        revision=row.revision,
        at=at,
        hour=round(hour, 2),
        share_left=round(share_left, 4),
        changes=changes,
        expected_profit_cents=sum(i.expected_profit_cents for i in new_items),
        envelope=envelope,
    )


def _revised_items(  # noqa: PLR0917
    cand: Candidates,
    items: list[PlanItem],
    rest: RestOfDay,
    sold: IntArray,
    revenue: dict[str, int],
    hour: float,
) -> tuple[list[PlanItemResult], list[ReplanChange]]:
    by_sku = {it.sku: it for it in (rest.result.items if rest.result else [])}
    out: list[PlanItemResult] = []
    changes: list[ReplanChange] = []
    for i, item in enumerate(items):
        sku = item.sku
        cost = int(cand.cost_cents[i])
        done_rev = int(revenue.get(sku, 0))
        done_profit = done_rev - int(sold[i]) * cost
        before = float(item.discount_pct) / 100
        new = by_sku.get(sku)
        if new is None:
            reason = rest.result.reason_for(sku).reason if rest.result else "nothing left to sell today"
            out.append(
                PlanItemResult(
                    sku=sku,
                    category=str(cand.category[i]),
                    brand=str(cand.brand[i]),
                    level=0,
                    discount=before,
                    list_price_cents=int(cand.list_price_cents[i]),
                    sale_price_cents=int(item.sale_price_cents),
                    cost_cents=cost,
                    allocated_units=int(sold[i]),
                    forecast_units=float(sold[i]),
                    expected_units=float(sold[i]),
                    expected_revenue_cents=done_rev,
                    expected_profit_cents=done_profit,
                    markdown_cost_cents=int(
                        (int(cand.list_price_cents[i]) - int(item.sale_price_cents)) * sold[i]
                    ),
                    clearance_value_cents=0,
                    objective_value=0.0,
                    margin=0.0,
                    reason=f"ended at {hour:04.1f} h for the rest of the day: {reason}",
                )
            )
            action = "ended" if int(item.allocated_units) <= int(sold[i]) else "end early"
            changes.append(
                ReplanChange(
                    sku=sku,
                    action=action,
                    discount_before=before,
                    discount_after=None,
                    allocated_before=int(item.allocated_units),
                    allocated_after=int(sold[i]),
                    sold_so_far=int(sold[i]),
                    demand_multiplier=round(float(rest.multiplier[i]), 3),
                )
            )
            continue
        merged = new.model_copy(
            update={
                "allocated_units": new.allocated_units + int(sold[i]),
                "forecast_units": new.forecast_units + float(sold[i]),
                "expected_units": new.expected_units + float(sold[i]),
                "expected_revenue_cents": new.expected_revenue_cents + done_rev,
                "expected_profit_cents": new.expected_profit_cents + done_profit,
                "reason": f"re-planned at {hour:04.1f} h ({int(sold[i])} sold, "
                f"demand x{rest.multiplier[i]:.2f} "
                f"of the forecast): {new.reason}",
            }
        )
        out.append(merged)
        if new.discount > before + 1e-9:
            change: Any = "deeper"
        elif new.discount < before - 1e-9:
            change = "shallower"
        elif merged.allocated_units > int(item.allocated_units):
            change = "more stock"
        elif merged.allocated_units < int(item.allocated_units):
            change = "less stock"
        else:
            change = "keep"
        changes.append(
            ReplanChange(
                sku=sku,
                action=change,
                discount_before=before,
                discount_after=new.discount,
                allocated_before=int(item.allocated_units),
                allocated_after=merged.allocated_units,
                sold_so_far=int(sold[i]),
                demand_multiplier=round(float(rest.multiplier[i]), 3),
            )
        )
    return out, changes


def _revised_result(
    rest: RestOfDay,
    items: list[PlanItemResult],
    constraints: PlanConstraints,
    weights: ObjectiveWeights,
    cand: Candidates,
) -> PlanResult:
    if rest.result is None:
        raise PlanStateError(
            "nothing is left to re-plan: every SKU has sold out, reached its stock, or the units approved "
            "for the sale are used up"
        )
    return rest.result.model_copy(
        update={
            "items": items,
            "expected_revenue_cents": sum(i.expected_revenue_cents for i in items),
            "expected_profit_cents": sum(i.expected_profit_cents for i in items),
            "expected_units": float(sum(i.expected_units for i in items)),
            "markdown_cost_cents": sum(i.markdown_cost_cents for i in items),
            "allocated_units": sum(i.allocated_units for i in items),
            "constraints": constraints,
            "weights": weights,
            "ladder": list(cand.ladder),
        }
    )
