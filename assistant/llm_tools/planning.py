"""LLM tools over the plan service: forecasts, optimised plans, what-if, trade-offs, saved plans, drafts.

Every plan tool builds a :class:`~tools.planning.PlanRequest` from its arguments (the arguments' defaults are
the request's own) and calls the plan service, so a plan asked in the chat is the plan ``python cli.py
plan`` and the daily draft make for the same question. Solved plans carry a ``proposal_id``; the proposal
itself travels as the tool call's artifact, kept with the conversation, so that ``save_draft_plan`` saves
exactly the plan that was shown (also from a later message, or from another bot process).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.base import ToolArgs, ToolDate, ToolText, WithArtifact, llm_tool
from tools.demand_forecast import ForecastResult, forecast_skus
from tools.market_event import MarketEvent
from tools.optimizer import ObjectiveWeights
from tools.planning import (
    MAX_HORIZON_DAYS,
    PlanProposal,
    PlanRequest,
    PlanRequestError,
    compare_plans,
    propose_plan,
    save_proposal,
    trade_offs,
)
from tools.plans import find_plan, list_plans, reason_for

_DEFAULTS = PlanRequest()
_WEIGHTS = ObjectiveWeights()
PROPOSAL_ID_PATTERN = r"^P[0-9a-f]{10}$"


class PlanArgs(ToolArgs):
    sale_date: ToolDate | None = Field(None, description="Sale day (YYYY-MM-DD); default: tomorrow.")
    slots: int = Field(_DEFAULTS.slots, ge=1, le=200, description="Most SKUs in the sale.")
    min_item_margin: float = Field(
        _DEFAULTS.min_item_margin,
        ge=0.0,
        lt=1.0,
        description="Least (price - cost) / price per item, a fraction (0.1 = 10 %).",
    )
    markdown_budget: float | None = Field(
        None,
        ge=0,
        le=1e9,
        allow_inf_nan=False,
        description="Most expected markdown (list - sale price) x units, in the shop's currency (e.g. 5000).",
    )
    category_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per named category.")
    default_category_max: int | None = Field(
        None, ge=0, le=200, description="Most SKUs of any other category."
    )
    match_competitor: bool = Field(False, description="Sale price at or below the competitor's price.")
    pinned: list[str] = Field(
        default_factory=list, max_length=50, description="SKUs that must be in the sale."
    )
    pinned_discounts: dict[str, float] = Field(
        default_factory=dict,
        max_length=50,
        description="SKUs that must be in the sale at a given discount, as fractions of the list price "
        "(0.4 = 40 % off; a step of the discount ladder).",
    )
    excluded: list[str] = Field(default_factory=list, max_length=200, description="SKUs that must stay out.")
    weight_revenue: float = Field(
        _WEIGHTS.revenue,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Objective weight of expected revenue.",
    )
    weight_profit: float = Field(
        _WEIGHTS.profit, ge=0, le=100, allow_inf_nan=False, description="Objective weight of expected profit."
    )
    weight_clearance: float = Field(
        _WEIGHTS.clearance,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Objective weight of clearing excess stock.",
    )
    explain_skus: list[str] = Field(
        default_factory=list, max_length=20, description="SKUs whose in/out reason to include."
    )

    def request(self) -> PlanRequest:
        """The plan service's request for these arguments."""
        return PlanRequest(
            sale_date=self.sale_date,
            slots=self.slots,
            min_item_margin=self.min_item_margin,
            markdown_budget_cents=None if self.markdown_budget is None else round(self.markdown_budget * 100),
            category_max=self.category_max,
            default_category_max=self.default_category_max,
            match_competitor=self.match_competitor,
            pinned=tuple(self.pinned),
            pinned_discounts=dict(self.pinned_discounts),
            excluded=tuple(self.excluded),
            weights=ObjectiveWeights(
                revenue=self.weight_revenue, profit=self.weight_profit, clearance=self.weight_clearance
            ),
        )


class WhatIfArgs(PlanArgs):
    pin: str | None = Field(None, max_length=64, description="Force this SKU into the alternative plan.")
    pin_discount: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="With pin: the discount it must have, as a fraction (0.4 = 40 % off; a ladder step).",
    )
    exclude: str | None = Field(None, max_length=64, description="Keep this SKU out of the alternative plan.")
    alt_slots: int | None = Field(None, ge=1, le=200, description="Slots of the alternative plan.")
    alt_min_item_margin: float | None = Field(None, ge=0.0, lt=1.0, description="Alternative item margin.")
    alt_markdown_budget: float | None = Field(
        None, ge=0, le=1e9, allow_inf_nan=False, description="Alternative markdown budget (shop's currency)."
    )
    event_scope: Literal["sku", "category", "brand"] | None = Field(
        None, description="A hypothetical market event on this kind of scope (with event_value)."
    )
    event_value: str | None = Field(None, max_length=100, description="The SKU, category or brand it hits.")
    event_multiplier: float | None = Field(
        None,
        gt=0.0,
        le=10.0,
        allow_inf_nan=False,
        description="The event's demand multiplier (0.6 = 40 % less demand, 1.5 = 50 % more).",
    )
    event_competitor_price: float | None = Field(
        None,
        gt=0,
        le=1e7,
        allow_inf_nan=False,
        description="A competitor's price on the hit SKUs (shop's currency); met when match_competitor.",
    )

    @model_validator(mode="after")
    def _some_change(self) -> WhatIfArgs:
        event = (self.event_scope, self.event_value, self.event_multiplier)
        if any(v is not None for v in (*event, self.event_competitor_price)) and None in event:
            raise ValueError("a market event needs event_scope, event_value and event_multiplier")
        if not (
            self.pin
            or self.exclude
            or self.alt_slots is not None
            or self.alt_min_item_margin is not None
            or self.alt_markdown_budget is not None
            or self.event_scope is not None
        ):
            raise ValueError(
                "say what changes: pin, exclude, alt_slots, alt_min_item_margin, alt_markdown_budget or a "
                "market event (event_scope, event_value, event_multiplier)"
            )
        return self

    def event(self) -> MarketEvent | None:
        if self.event_scope is None or self.event_value is None or self.event_multiplier is None:
            return None
        price = self.event_competitor_price
        return MarketEvent(
            scope=self.event_scope,
            value=self.event_value,
            multiplier=self.event_multiplier,
            competitor_price_cents=None if price is None else round(price * 100),
        )


class ParetoArgs(PlanArgs):
    secondary: Literal["revenue", "sell_through"] = Field(
        "revenue", description="What to trade expected profit against."
    )
    points: int = Field(5, ge=2, le=9, description="Most plans on the frontier.")


class SaveDraftArgs(PlanArgs):
    proposal_id: str | None = Field(
        None,
        pattern=PROPOSAL_ID_PATTERN,
        description="The proposal_id of a plan shown by optimize_plan or what_if: saves exactly that plan "
        "(the other arguments are then ignored).",
    )
    notes: ToolText | None = Field(
        None, max_length=1000, description="Why this draft (shown to the approver)."
    )


class ForecastArgs(ToolArgs):
    skus: list[str] = Field(min_length=1, max_length=30, description="SKUs to forecast (at most 30).")
    discounts: list[float] = Field(
        default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        min_length=1,
        max_length=10,
        description="Discounts off the list price to forecast at, as fractions (0.2 = 20 % off).",
    )
    date: ToolDate | None = Field(None, description="Sale day (YYYY-MM-DD); default: tomorrow.")
    featured: bool = Field(True, description="Whether the SKUs are featured in a flash sale that day.")
    use_signals: bool = Field(True, description="Apply the market signals active that day.")

    @model_validator(mode="after")
    def _discounts_in_range(self) -> ForecastArgs:
        bad = [d for d in self.discounts if not 0.0 <= d < 1.0]
        if bad:
            raise ValueError(f"discounts must be fractions in [0, 1): {bad} (write 0.2 for 20 %)")
        return self


class ExplainPlanArgs(ToolArgs):
    plan_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The plan's id; omit to use sale_date or the newest."
    )
    sale_date: ToolDate | None = Field(None, description="Newest plan for this sale day (YYYY-MM-DD).")
    sku: str | None = Field(
        None, max_length=64, description="Also say whether and why this SKU is in the plan."
    )
    list_recent: bool = Field(False, description="Instead list the 20 newest plans (id, date, status).")


# ---- views ---------------------------------------------------------------------------------------------


_ITEM_FIELDS = {
    "sku",
    "category",
    "discount",
    "list_price_cents",
    "sale_price_cents",
    "allocated_units",
    "expected_units",
    "expected_revenue_cents",
    "expected_profit_cents",
    "margin",
    "reason",
}
_TOTALS = ("expected_revenue_cents", "expected_profit_cents", "expected_units", "allocated_units")


def _reasons(proposal: PlanProposal, skus: list[str]) -> dict[str, str]:
    out = {}
    for sku in skus:
        try:
            r = proposal.result.reason_for(sku)
        except KeyError:
            out[sku] = "not a candidate (no demand model estimate or no list price)"
            continue
        prefix = "" if r.reason.lower().startswith(("in", "out")) else ("in: " if r.selected else "out: ")
        out[sku] = prefix + r.reason
    return out


def proposal_view(proposal: PlanProposal, explain: list[str] | None = None) -> dict[str, Any]:
    """What the model reads of a proposal: totals, items, binding constraints with their worth, reasons."""
    result = proposal.result
    items = []
    for item in result.items:
        row = item.model_dump(include=_ITEM_FIELDS)
        row["title"] = proposal.titles.get(item.sku, "")
        row["expected_units"] = round(item.expected_units, 2)
        row["margin"] = round(item.margin, 4)
        evidence = proposal.evidence.get(item.sku)
        if evidence is not None:
            row["forecast_vs_best_comparable_day"] = evidence.comparable_ratio
            if evidence.flagged:
                row["forecast_flag"] = evidence.summary()
        items.append(row)
    return {
        "proposal_id": proposal.proposal_id,
        "sale_date": proposal.sale_date,
        "status": result.status,
        "objective_value_cents": round(result.objective),
        **{k: result.expected_totals()[k] for k in _TOTALS},
        "markdown_cost_cents": result.markdown_cost_cents,
        "gap_vs_lp_bound": round(result.gap, 5),
        "demand_model_id": proposal.demand_model_id,
        "model_current": proposal.model_current,
        "notes": proposal.notes,
        "candidates": proposal.candidates,
        "items": items,
        "binding_constraints": [
            {
                "constraint": b.label,
                "marginal_value_cents": round(b.marginal_value_cents),
                "per": b.marginal_unit,
            }
            for b in result.binding[:10]
        ],
        "reasons": _reasons(proposal, explain or []),
        "reasons_out_by_code": dict(Counter(r.code for r in result.reasons if not r.selected)),
        "next_step": "to save this plan as a draft, call save_draft_plan with "
        f"proposal_id={proposal.proposal_id}",
    }


def _summary(proposal: PlanProposal) -> dict[str, Any]:
    result = proposal.result
    return {
        "proposal_id": proposal.proposal_id,
        "objective_value_cents": round(result.objective),
        **{k: result.expected_totals()[k] for k in _TOTALS},
        "skus": result.skus,
    }


def _artifact(*proposals: PlanProposal | None) -> dict[str, Any]:
    return {"proposals": {p.proposal_id: p.model_dump(mode="json") for p in proposals if p is not None}}


# ---- tools ---------------------------------------------------------------------------------------------


@llm_tool(ForecastArgs)
def forecast_demand(deps: Deps, session: Session, args: ForecastArgs) -> ForecastResult:
    """Forecast a day's demand of SKUs at several discounts from the fitted demand model: expected units
    with 10 %/90 % quantiles, the SKU's elasticity, flash-sale lift and the market signals applied."""
    today = deps.today()
    on = args.date or today + dt.timedelta(days=1)
    if on > today + dt.timedelta(days=MAX_HORIZON_DAYS):
        raise PlanRequestError(
            f"the date {on} is more than {MAX_HORIZON_DAYS} days ahead of today ({today}); the demand model "
            "does not forecast that far"
        )
    return forecast_skus(
        session, args.skus, args.discounts, on, featured=args.featured, use_signals=args.use_signals
    )


@llm_tool(PlanArgs)
def optimize_plan(deps: Deps, session: Session, args: PlanArgs) -> WithArtifact:
    """Optimise the flash sale for a day under constraints (slots, margins, budget, category caps,
    pinned/excluded SKUs): the SKUs, discounts, allocations, expected revenue and profit, binding
    constraints with what relaxing each is worth, and why given SKUs are in or out. Saves nothing: the
    result has a proposal_id that save_draft_plan saves."""
    proposal = propose_plan(session, args.request(), today=deps.today())
    return WithArtifact(proposal_view(proposal, args.explain_skus), _artifact(proposal))


@llm_tool(WhatIfArgs)
def what_if(deps: Deps, session: Session, args: WhatIfArgs) -> WithArtifact:
    """Compare the optimal plan with an alternative: a SKU pinned (optionally at a given discount) or
    excluded, different slots, margin or budget, or a hypothetical market event (a category, brand or SKU
    whose demand changes, optionally with a competitor's price); with an event also the forecast and its
    80 % interval for each SKU it touches, with and without it. Returns the change in expected profit and
    revenue, the SKUs added/removed, and a proposal_id for each plan."""
    changes: dict[str, Any] = {}
    if args.alt_slots is not None:
        changes["slots"] = args.alt_slots
    if args.alt_min_item_margin is not None:
        changes["min_item_margin"] = args.alt_min_item_margin
    if args.alt_markdown_budget is not None:
        changes["markdown_budget_cents"] = round(args.alt_markdown_budget * 100)
    c = compare_plans(
        session,
        args.request(),
        today=deps.today(),
        pin=args.pin,
        pin_discount=args.pin_discount,
        exclude=args.exclude,
        changes=changes,
        event=args.event(),
    )
    d = c.difference
    view: dict[str, Any] = {
        "change": c.change,
        "base": _summary(c.base),
        "alternative": None if c.alternative is None else _summary(c.alternative),
        "infeasible_reason": d.infeasible_reason,
        "delta_profit_cents": d.delta_profit_cents,
        "delta_revenue_cents": d.delta_revenue_cents,
        "delta_objective_cents": round(d.delta_objective),
        "added": d.added,
        "removed": d.removed,
        "changed_discounts": {k: {"base": v[0], "alternative": v[1]} for k, v in d.changed_discounts.items()},
    }
    if c.affected:
        view["affected_by_event"] = c.affected  # units; low/high: the forecast's 80 % interval
    return WithArtifact(view, _artifact(c.base, c.alternative))


@llm_tool(ParetoArgs)
def pareto_frontier(deps: Deps, session: Session, args: ParetoArgs) -> dict[str, Any]:
    """Trade-off plans between expected profit and revenue (or sell-through) for a sale day: each point is
    a plan with its expected profit, revenue, sell-through and SKUs."""
    request = args.request()
    frontier = trade_offs(session, request, today=deps.today(), points=args.points, secondary=args.secondary)
    data = frontier.model_dump(mode="json")
    data["sale_date"] = request.sale_date or deps.today() + dt.timedelta(days=1)
    data["note"] = "each point is a plan; more of the secondary measure costs expected profit"
    return data


@llm_tool(ExplainPlanArgs)
def explain_plan(deps: Deps, session: Session, args: ExplainPlanArgs) -> dict[str, Any]:
    """A saved flash-sale plan (by id, sale date, or the newest): status, objective, constraints, solver
    facts and items with discount, sale price, allocated and expected units, expected revenue and profit
    and the reason for each; with sku, whether and why that SKU is in it."""
    if args.list_recent:
        return {"plans": list_plans(session)}
    plan = find_plan(session, plan_id=args.plan_id, sale_date=args.sale_date)
    data = plan.model_dump(mode="json")
    if args.sku is not None:
        data["sku_question"] = reason_for(session, plan, args.sku)
    return data


@llm_tool(SaveDraftArgs, writes="a draft flash_sale_plan (status draft) for a person to approve")
def save_draft_plan(deps: Deps, session: Session, args: SaveDraftArgs) -> dict[str, Any]:
    """Save a plan as a DRAFT for a person to approve: the plan shown by optimize_plan or what_if (give its
    proposal_id), or the plan for these arguments. Only when the user asks to save it. It does not change
    any price."""
    if args.proposal_id is not None:
        proposal = deps.proposals(args.proposal_id)
        if proposal is None:
            raise PlanRequestError(
                f"no plan with proposal_id {args.proposal_id} was shown in this conversation; call "
                "optimize_plan again and save the proposal_id it returns"
            )
    else:
        proposal = propose_plan(session, args.request(), today=deps.today())
    plan_id = save_proposal(session, proposal, created_by=f"assistant:{deps.actor}"[:100], notes=args.notes)
    result = proposal.result
    return {
        "plan_id": plan_id,
        "status": "draft",
        "proposal_id": proposal.proposal_id,
        "sale_date": proposal.sale_date,
        "items": len(result.items),
        "expected_profit_cents": result.expected_profit_cents,
        "expected_revenue_cents": result.expected_revenue_cents,
        "next_step": f"a person approves it with `python cli.py plan approve {plan_id} --by NAME`",
    }
