"""Plans in the database: candidates from the shop and a demand model, drafts, approval, stored plans.

``build_candidates`` reads the catalogue, the latest stock and competitor prices, and asks the demand model
for a forecast at every discount of the ladder (with the market signals active on the sale date).
``save_draft_plan`` stores an optimiser result as a *draft* with its inputs, constraints, demand-model id
and solver statistics (approving and the other moves of a plan are in :mod:`tools.lifecycle`).
:class:`StoredPlan` is the one model of a saved plan that every reader (the CLI, the agent's tools, the
Slack bot, the daily draft, the narrative) uses and renders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, computed_field
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
from tools.catalog import get_product
from tools.demand import DemandModel
from tools.forecast_guard import ForecastEvidence
from tools.optimizer import (
    CLEARANCE_VALUE_OF_COST,
    DEFAULT_LADDER,
    Candidates,
    PlanResult,
    ladder_prices,
    validate_ladder,
)
from tools.outside_text import OutsideText
from tools.signals import active_signals


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
    assume_stock: int | None = None,
) -> Candidates:
    """Every product the demand model knows (or ``skus``) with stock, prices and a forecast per discount.

    Safety stock is ``safety_days`` of regular demand (at list price, not featured); stock beyond
    ``cover_days`` of regular demand counts as excess, worth ``CLEARANCE_VALUE_OF_COST`` x cost per unit
    cleared. ``assume_stock`` gives SKUs without a stock level that many units; without it, a shop with no
    stock levels at all is refused with the command that imports them.
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
    counted = np.zeros(n, dtype=bool)
    for sku, qty, reserved in inv:
        if sku in pos:
            on_hand[pos[sku]] = max(int(qty) - int(reserved or 0), 0)
            counted[pos[sku]] = True
    if assume_stock is not None:
        on_hand[~counted] = assume_stock
    elif not counted.any():
        raise DatabaseNotReady(
            f"no stock levels for any of the {n:,} candidate SKUs on {sale_date}: import them with "
            "`python cli.py import inventory FILE`, or plan on an assumption with --assume-stock N "
            "(units on hand per SKU)"
        )

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
        meta={
            "sale_date": sale_date.isoformat(),
            "signals": [s.id for s in signals or []],
            "assumed_stock": int((~counted).sum()) if assume_stock is not None else 0,
            "estimated_costs": sorted(r.sku for r in rows if (r.attributes or {}).get("cost_estimated")),
        },
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
            "max_units": candidates.max_units.tolist() if candidates.max_units is not None else [],
        },
        "signal_ids": sorted({i for ids in candidates.grid.signal_ids for i in ids}),
        # a plan made under a hypothetical market event (a what-if) says so
        **(
            {"market_event": candidates.grid.meta["market_event"]}
            if "market_event" in candidates.grid.meta
            else {}
        ),
    }


def save_draft_plan(
    session: Session,
    result: PlanResult,
    *,
    sale_date: dt.date,
    inputs: dict[str, Any] | None = None,
    created_by: str = "system",
    notes: str | None = None,
) -> int:
    """Store ``result`` as a draft plan (with the optimiser's per-SKU ``inputs`` when given); returns its id.

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
            "inputs": inputs,
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


# ---- stored plans ----------------------------------------------------------------------------------------


class StoredPlanItem(BaseModel):
    """One SKU of a saved plan, with its product facts (money in cents)."""

    sku: str
    title: OutsideText
    category: str
    brand: str
    discount: float = Field(description="Fraction taken off the list price (0.3 = 30 % off).")
    list_price_cents: int
    sale_price_cents: int
    cost_cents: int
    allocated_units: int
    expected_units: float = Field(description="Expected units sold within the allocation.")
    expected_revenue_cents: int
    expected_profit_cents: int
    reason: str | None
    signal_ids: list[int] = Field(default_factory=list, description="Market signals that moved its forecast.")
    evidence: ForecastEvidence | None = Field(
        None, description="What it sold before, beside its forecast (None: a plan saved without it)."
    )

    @computed_field(description="(sale price - cost) / sale price, a fraction.")  # type: ignore[prop-decorator]
    @property
    def margin(self) -> float:
        price = self.sale_price_cents
        return round((price - self.cost_cents) / price, 4) if price else 0.0


class StoredPlan(BaseModel):
    """A saved flash-sale plan as the optimiser or a person left it: header, constraints, solver facts and
    items (largest expected profit first). The optimiser's per-SKU inputs and its reasons for the SKUs left
    out stay in the database (see :func:`reason_for`)."""

    id: int
    sale_date: dt.date
    status: str
    created_by: str
    created_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    notes: str | None
    demand_model_id: int | None
    objective: dict[str, Any]
    constraints: dict[str, Any] = Field(description="The merchandiser's constraints and the ladder.")
    solver_status: str | None
    gap: float | None = Field(description="Relative gap to the LP bound when the plan was solved.")
    binding: list[dict[str, Any]] = Field(description="Binding constraints with their marginal values.")
    items: list[StoredPlanItem]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expected_revenue_cents(self) -> int:
        return sum(i.expected_revenue_cents for i in self.items)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expected_profit_cents(self) -> int:
        return sum(i.expected_profit_cents for i in self.items)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expected_units(self) -> float:
        return round(sum(i.expected_units for i in self.items), 2)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allocated_units(self) -> int:
        return sum(i.allocated_units for i in self.items)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def markdown_cost_cents(self) -> int:
        return round(sum((i.list_price_cents - i.sale_price_cents) * i.expected_units for i in self.items))


class PlanSummary(BaseModel):
    plan_id: int
    sale_date: dt.date
    status: str
    items: int
    created_by: str


def _stored(session: Session, plan: FlashSalePlan) -> StoredPlan:
    rows = session.execute(
        select(PlanItem, Product)
        .join(Product, Product.sku == PlanItem.sku)
        .where(PlanItem.plan_id == plan.id)
        .order_by(PlanItem.expected_profit_cents.desc(), PlanItem.sku)
    ).all()
    stats = dict(plan.solver_stats or {})
    stored_inputs = (plan.constraints or {}).get("inputs") or {}
    item_signals = stored_inputs.get("item_signals") or {}
    item_evidence = stored_inputs.get("item_evidence") or {}
    return StoredPlan(
        id=plan.id,
        sale_date=plan.sale_date,
        status=str(plan.status.value),
        created_by=plan.created_by,
        created_at=plan.created_at,
        approved_by=plan.approved_by,
        approved_at=plan.approved_at,
        notes=plan.notes,
        demand_model_id=plan.demand_model_id,
        objective=dict(plan.objective or {}),
        constraints={k: v for k, v in (plan.constraints or {}).items() if k != "inputs"},
        solver_status=stats.get("status"),
        gap=stats.get("gap"),
        binding=list(stats.get("binding") or []),
        items=[
            StoredPlanItem(
                sku=i.sku,
                title=p.title,
                category=p.category,
                brand=p.brand,
                discount=float(i.discount_pct) / 100,
                list_price_cents=p.list_price_cents,
                sale_price_cents=i.sale_price_cents,
                cost_cents=p.cost_cents,
                allocated_units=i.allocated_units,
                expected_units=i.forecast_units,
                expected_revenue_cents=i.expected_revenue_cents,
                expected_profit_cents=i.expected_profit_cents,
                reason=i.reason,
                signal_ids=[int(s) for s in item_signals.get(i.sku, [])],
                evidence=ForecastEvidence.model_validate(item_evidence[i.sku])
                if i.sku in item_evidence
                else None,
            )
            for i, p in rows
        ],
    )


def load_plan(session: Session, plan_id: int) -> StoredPlan:
    """The stored plan ``plan_id``; raises :class:`PlanNotFound`."""
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise PlanNotFound(f"no plan with id {plan_id}; list the plans with `python cli.py plan list`")
    return _stored(session, plan)


def find_plan(
    session: Session, *, plan_id: int | None = None, sale_date: dt.date | None = None
) -> StoredPlan:
    """A plan by id, else the newest plan for ``sale_date``, else the newest plan of all."""
    if plan_id is not None:
        return load_plan(session, plan_id)
    stmt = select(FlashSalePlan).order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
    if sale_date is not None:
        stmt = stmt.where(FlashSalePlan.sale_date == sale_date)
    plan = session.scalars(stmt.limit(1)).first()
    if plan is None:
        what = f"sale date {sale_date}" if sale_date else "any date"
        raise PlanNotFound(f"no flash-sale plan for {what}; make one with `python cli.py plan`")
    return _stored(session, plan)


def reason_for(session: Session, plan: StoredPlan, sku: str) -> str:
    """Whether and why ``sku`` is in ``plan``: the item's reason, or the optimiser's reason for leaving it
    out."""
    get_product(session, sku)
    item = next((i for i in plan.items if i.sku == sku), None)
    if item is not None:
        return f"{sku} is in plan {plan.id} at {item.discount:.0%} off: {item.reason or 'no reason stored'}"
    row = session.get(FlashSalePlan, plan.id)
    reasons = ((row.solver_stats if row is not None else None) or {}).get("reasons") or {}
    stored = reasons.get(sku) if isinstance(reasons, dict) else None
    return f"{sku} is not in plan {plan.id}: {stored or 'the plan stores no reason for SKUs left out'}"


def list_plans(session: Session, *, limit: int = 20) -> list[PlanSummary]:
    """The newest plans (by sale date) with their status and size."""
    n_items = select(PlanItem.plan_id, func.count().label("n")).group_by(PlanItem.plan_id).subquery()
    rows = session.execute(
        select(FlashSalePlan, func.coalesce(n_items.c.n, 0))
        .outerjoin(n_items, n_items.c.plan_id == FlashSalePlan.id)
        .order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
        .limit(max(1, min(limit, 200)))
    ).all()
    return [
        PlanSummary(
            plan_id=p.id,
            sale_date=p.sale_date,
            status=str(p.status.value),
            items=int(n),
            created_by=p.created_by,
        )
        for p, n in rows
    ]
