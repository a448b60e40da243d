"""Plans in the database: candidates from the shop and a demand model, draft plans, approval.

``build_candidates`` reads the catalogue, the latest stock and competitor prices, and asks the demand model
for a forecast at every discount of the ladder (with the market signals active on the sale date).
``save_draft_plan`` stores an optimiser result as a *draft* with its inputs, constraints, demand-model id
and solver statistics. ``approve_plan`` is a person's act: the CLI and the Slack button call it; it is
never offered to the LLM as a tool.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import DatabaseNotReady, FlashSaleError
from db.models import (
    CompetitorPrice,
    FlashSalePlan,
    Inventory,
    PlanItem,
    PlanStatus,
    Product,
)
from tools.demand import DemandModel
from tools.optimizer import (
    CLEARANCE_VALUE_OF_COST,
    DEFAULT_LADDER,
    Candidates,
    PlanResult,
    ladder_prices,
    validate_ladder,
)


class PlanNotFound(FlashSaleError):
    """No plan with that id."""


class PlanStateError(FlashSaleError):
    """The plan is not in a state that allows the requested change."""


def build_candidates(
    session: Session,
    sale_date: dt.date,
    model: DemandModel,
    *,
    ladder: tuple[float, ...] | list[float] = DEFAULT_LADDER,
    skus: list[str] | None = None,
    use_signals: bool = True,
    safety_days: float = 1.0,
    cover_days: float = 60.0,
) -> Candidates:
    """Every product the demand model knows (or ``skus``) with stock, prices and a forecast per discount.

    Safety stock is ``safety_days`` of regular demand (at list price, not featured); stock beyond
    ``cover_days`` of regular demand counts as excess, worth ``CLEARANCE_VALUE_OF_COST`` x cost per unit
    cleared.
    """
    ladder = validate_ladder(ladder)
    known = set(model.skus)
    query = select(
        Product.sku,
        Product.title,
        Product.category,
        Product.brand,
        Product.cost_cents,
        Product.list_price_cents,
        Product.attributes,
    ).where(Product.is_product.is_(True))
    if skus is not None:
        query = query.where(Product.sku.in_(skus))
    rows = [r for r in session.execute(query.order_by(Product.sku)).all() if r.sku in known]
    rows = [r for r in rows if r.list_price_cents and r.list_price_cents > 0]
    if not rows:
        raise DatabaseNotReady(
            "no products to plan: load a shop (python cli.py demo) and fit the demand model "
            "(python cli.py fit)"
        )
    sku_list = [r.sku for r in rows]
    pos = {s: i for i, s in enumerate(sku_list)}
    n = len(sku_list)
    cutoff = dt.datetime.combine(sale_date, dt.time.min)

    on_hand = np.zeros(n, dtype=np.int64)
    latest = (
        select(Inventory.sku, func.max(Inventory.as_of).label("as_of"))
        .where(Inventory.as_of <= cutoff)
        .group_by(Inventory.sku)
        .subquery()
    )
    inv = session.execute(
        select(Inventory.sku, Inventory.on_hand, Inventory.reserved).join(
            latest, (Inventory.sku == latest.c.sku) & (Inventory.as_of == latest.c.as_of)
        )
    ).all()
    for sku, qty, reserved in inv:
        if sku in pos:
            on_hand[pos[sku]] = max(int(qty) - int(reserved or 0), 0)

    competitor = np.zeros(n, dtype=np.int64)
    latest_cp = (
        select(
            CompetitorPrice.sku, CompetitorPrice.competitor, func.max(CompetitorPrice.seen_at).label("seen")
        )
        .where(CompetitorPrice.seen_at <= cutoff)
        .group_by(CompetitorPrice.sku, CompetitorPrice.competitor)
        .subquery()
    )
    cps = session.execute(
        select(CompetitorPrice.sku, func.min(CompetitorPrice.price_cents))
        .join(
            latest_cp,
            (CompetitorPrice.sku == latest_cp.c.sku)
            & (CompetitorPrice.competitor == latest_cp.c.competitor)
            & (CompetitorPrice.seen_at == latest_cp.c.seen),
        )
        .group_by(CompetitorPrice.sku)
    ).all()
    for sku, price in cps:
        if sku in pos and price:
            competitor[pos[sku]] = int(price)

    list_price = np.array([r.list_price_cents for r in rows], dtype=np.int64)
    cost = np.array([r.cost_cents for r in rows], dtype=np.int64)
    floor = np.array(
        [int((r.attributes or {}).get("price_floor_cents", 0) or 0) for r in rows], dtype=np.int64
    )
    signals = None
    if use_signals:
        from tools.signals import active_signals

        signals = active_signals(session, sale_date)
    grid = model.forecast_grid(sale_date, sku_list, ladder_prices(list_price, ladder), True, signals)
    regular = model.forecast_grid(sale_date, sku_list, list_price[:, None], False, signals).mean[:, 0]
    safety = np.minimum(np.ceil(regular * safety_days), on_hand).astype(np.int64)
    excess = np.maximum(on_hand - regular * cover_days, 0.0)
    return Candidates(
        skus=sku_list,
        category=np.array([r.category for r in rows], dtype=np.str_),
        brand=np.array([r.brand for r in rows], dtype=np.str_),
        cost_cents=cost,
        list_price_cents=list_price,
        on_hand=on_hand,
        grid=grid,
        ladder=ladder,
        safety_stock=safety,
        competitor_price_cents=competitor,
        price_floor_cents=floor,
        excess_units=excess,
        clearance_value_cents=np.asarray(cost * CLEARANCE_VALUE_OF_COST, dtype=np.float64),
        titles=[r.title for r in rows],
        meta={"sale_date": sale_date.isoformat(), "signals": [s.id for s in signals or []]},
    )


def candidate_inputs(candidates: Candidates) -> dict[str, Any]:
    """The optimiser's per-SKU inputs as JSON columns (stored with the plan so it can be re-run)."""
    assert candidates.safety_stock is not None and candidates.competitor_price_cents is not None
    assert candidates.price_floor_cents is not None and candidates.excess_units is not None
    digest = hashlib.sha256("\n".join(candidates.skus).encode()).hexdigest()[:16]
    return {
        "count": candidates.n,
        "skus_sha256": digest,
        "ladder": list(candidates.ladder),
        "columns": {
            "sku": candidates.skus,
            "category": candidates.category.tolist(),
            "brand": candidates.brand.tolist(),
            "cost_cents": candidates.cost_cents.tolist(),
            "list_price_cents": candidates.list_price_cents.tolist(),
            "on_hand": candidates.on_hand.tolist(),
            "safety_stock": candidates.safety_stock.tolist(),
            "competitor_price_cents": candidates.competitor_price_cents.tolist(),
            "price_floor_cents": candidates.price_floor_cents.tolist(),
            "excess_units": [round(float(x), 3) for x in candidates.excess_units.tolist()],
        },
        "signal_ids": sorted({i for ids in candidates.grid.signal_ids for i in ids}),
    }


def save_draft_plan(
    session: Session,
    result: PlanResult,
    candidates: Candidates | None = None,
    *,
    sale_date: dt.date,
    created_by: str = "system",
    notes: str | None = None,
) -> int:
    """Store ``result`` as a draft plan (with its inputs when ``candidates`` is given); returns its id.

    ``plan_item.forecast_units`` holds the expected units *sold* (demand capped by the allocation).
    """
    plan = FlashSalePlan(
        sale_date=sale_date,
        status=PlanStatus.DRAFT,
        objective={
            "weights": result.weights.model_dump(mode="json"),
            "value": result.objective,
            **result.expected_totals(),
        },
        constraints={
            **result.constraints.model_dump(mode="json"),
            "ladder": result.ladder,
            "inputs": candidate_inputs(candidates) if candidates is not None else None,
        },
        solver_stats={
            **result.stats.model_dump(mode="json"),
            "status": result.status,
            "lp_bound": result.lp_bound,
            "gap": result.gap,
            "best_bound": result.best_bound,
            "proven_gap": result.proven_gap,
            "options": result.options.model_dump(mode="json"),
            "binding": [b.model_dump(mode="json") for b in result.binding],
            "reasons": {r.sku: r.reason for r in result.reasons},
        },
        demand_model_id=result.demand_model_id,
        created_by=created_by,
        notes=notes,
    )
    for it in result.items:
        plan.items.append(
            PlanItem(
                sku=it.sku,
                discount_pct=Decimal(str(round(it.discount * 100, 2))),
                sale_price_cents=it.sale_price_cents,
                allocated_units=it.allocated_units,
                forecast_units=it.expected_units,
                expected_revenue_cents=it.expected_revenue_cents,
                expected_profit_cents=it.expected_profit_cents,
                reason=it.reason,
            )
        )
    session.add(plan)
    session.flush()
    return int(plan.id)


class StoredPlanItem(BaseModel):
    sku: str
    discount_pct: float
    sale_price_cents: int
    allocated_units: int
    forecast_units: float
    expected_revenue_cents: int
    expected_profit_cents: int
    reason: str | None


class StoredPlan(BaseModel):
    """A plan as stored: header, inputs, solver statistics and items."""

    id: int
    sale_date: dt.date
    status: str
    objective: dict[str, Any]
    constraints: dict[str, Any]
    solver_stats: dict[str, Any]
    demand_model_id: int | None
    created_by: str
    approved_by: str | None
    approved_at: dt.datetime | None
    notes: str | None
    items: list[StoredPlanItem]


def _stored(plan: FlashSalePlan) -> StoredPlan:
    return StoredPlan(
        id=plan.id,
        sale_date=plan.sale_date,
        status=str(plan.status.value),
        objective=dict(plan.objective or {}),
        constraints=dict(plan.constraints or {}),
        solver_stats=dict(plan.solver_stats or {}),
        demand_model_id=plan.demand_model_id,
        created_by=plan.created_by,
        approved_by=plan.approved_by,
        approved_at=plan.approved_at,
        notes=plan.notes,
        items=[
            StoredPlanItem(
                sku=it.sku,
                discount_pct=float(it.discount_pct),
                sale_price_cents=it.sale_price_cents,
                allocated_units=it.allocated_units,
                forecast_units=it.forecast_units,
                expected_revenue_cents=it.expected_revenue_cents,
                expected_profit_cents=it.expected_profit_cents,
                reason=it.reason,
            )
            for it in sorted(plan.items, key=lambda i: -i.expected_profit_cents)
        ],
    )


def get_plan(session: Session, plan_id: int) -> StoredPlan:
    """The stored plan ``plan_id``; raises :class:`PlanNotFound`."""
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise PlanNotFound(
            f"no plan with id {plan_id}; list plans with the assistant or `python cli.py draft`"
        )
    return _stored(plan)


def approve_plan(
    session: Session, plan_id: int, approver: str, *, now: dt.datetime | None = None, channel: str = "cli"
) -> StoredPlan:
    """A person approves a draft plan. Never exposed as an LLM tool. Raises on unknown or non-draft plans."""
    approver = (approver or "").strip()
    if not approver:
        raise PlanStateError("an approval needs the approver's name (--by NAME)")
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise PlanNotFound(f"no plan with id {plan_id}")
    if plan.status != PlanStatus.DRAFT:
        raise PlanStateError(
            f"plan {plan_id} is {plan.status.value}, not a draft; only drafts can be approved"
        )
    plan.status = PlanStatus.APPROVED
    plan.approved_by = approver
    plan.approved_at = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    from db.audit import record_audit

    record_audit(
        session,
        actor=approver,
        channel=channel,
        kind="approval",
        name="approve_plan",
        inputs={"plan_id": plan_id},
        outputs={"status": "approved"},
        latency_ms=None,
        session_id=None,
    )
    session.flush()
    return _stored(plan)
