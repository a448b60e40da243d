"""The plan service: the one way a flash-sale plan is made, whoever asks.

``python cli.py plan``, the assistant's tools (``optimize_plan``, ``what_if``, ``pareto_frontier``,
``save_draft_plan``, in the terminal chat and in Slack) and the daily draft all describe what they want as a
:class:`PlanRequest` and call :func:`propose_plan`; :func:`save_proposal` stores the result as a draft. The
defaults live in one place (the fields of :class:`PlanRequest`), the sale date defaults to tomorrow by the
caller's clock, and the solve is deterministic, so the same question on the same data gives the same plan
whichever way it is asked.

The service plans with the latest stored demand model and says when that model is older than the orders
(:attr:`PlanProposal.notes`); refitting is the caller's step (:func:`tools.demand.refresh_demand_model`),
taken by the CLI and the daily draft before they plan, never by the read-only assistant tools.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import FlashSaleError
from db.models import FlashSalePlan, PlanStatus, Product
from tools.catalog import get_product
from tools.demand import DemandModel, DemandModelError, is_current, load_latest_demand_model
from tools.forecast_guard import GUARD_FACTOR, ForecastEvidence, forecast_evidence, guard_caps
from tools.market_event import AffectedSku, MarketEvent, affected_skus, with_event
from tools.optimizer import (
    DEFAULT_LADDER,
    Candidates,
    InfeasiblePlan,
    ObjectiveWeights,
    ParetoFrontier,
    PlanConstraints,
    PlanResult,
    SolverOptions,
    WhatIfResult,
    optimize_plan,
    pareto_frontier,
    validate_ladder,
)
from tools.optimizer.whatif import apply_change, plan_difference
from tools.plans import build_candidates, candidate_inputs, save_draft_plan

#: How far ahead a sale may be planned.
MAX_HORIZON_DAYS = 90


class PlanRequestError(FlashSaleError):
    """A plan request that cannot be answered as asked (a sale date out of range, unknown SKUs)."""


class PlanRequest(BaseModel):
    """What a plan is asked for. Every field has the product's documented default; money in cents, margins
    as fractions of the sale price."""

    model_config = ConfigDict(extra="forbid")

    sale_date: dt.date | None = Field(None, description="Sale day; None: tomorrow by the shop's clock.")
    slots: int = Field(20, ge=1, le=1000, description="Most SKUs in the sale.")
    min_item_margin: float = Field(
        0.10, ge=0.0, lt=1.0, description="Least (price - cost) / price of each item (0.1 = 10 %)."
    )
    min_plan_margin: float | None = Field(
        None, ge=0.0, lt=1.0, description="Least expected profit / expected revenue over the plan."
    )
    markdown_budget_cents: int | None = Field(
        None, ge=0, le=10**13, description="Most expected markdown (list - sale price) x units."
    )
    ladder: tuple[float, ...] = Field(DEFAULT_LADDER, description="Discounts the sale may use.")
    category_min: dict[str, int] = Field(default_factory=dict, description="Least SKUs per named category.")
    category_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per named category.")
    default_category_max: int | None = Field(None, ge=0, description="Most SKUs of any other category.")
    brand_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per named brand.")
    default_brand_max: int | None = Field(None, ge=0, description="Most SKUs of any other brand.")
    match_competitor: bool = Field(False, description="Sale price at or below the competitor's price.")
    pinned: tuple[str, ...] = Field((), description="SKUs that must be in the sale.")
    pinned_discounts: dict[str, float] = Field(
        default_factory=dict,
        description="SKUs that must be in the sale at this ladder discount (0.4 = 40 % off).",
    )
    excluded: tuple[str, ...] = Field((), description="SKUs that must stay out.")
    weights: ObjectiveWeights = Field(default_factory=ObjectiveWeights)
    assume_stock: int | None = Field(
        None,
        ge=0,
        le=10**7,
        description="Units on hand assumed for SKUs without a stock level (None: refuse).",
    )
    guard_factor: float = Field(
        GUARD_FACTOR,
        gt=1.0,
        le=100.0,
        description="Flag items forecast above this many times the most they sold on a comparable day.",
    )
    guard_cap: bool = Field(
        True, description="Cap a flagged item's allocation at that bound (False: flag only)."
    )
    time_limit_s: float = Field(30.0, gt=0, le=600, description="Wall-clock limit of the solve.")
    relative_gap: float = Field(1e-3, ge=0.0, le=0.5, description="Stop within this gap of the LP bound.")

    @model_validator(mode="after")
    def _valid_ladder(self) -> PlanRequest:
        validate_ladder(self.ladder)
        return self

    def constraints(self) -> PlanConstraints:
        return PlanConstraints(
            slots=self.slots,
            category_min=self.category_min,
            category_max=self.category_max,
            default_category_max=self.default_category_max,
            brand_max=self.brand_max,
            default_brand_max=self.default_brand_max,
            markdown_budget_cents=self.markdown_budget_cents,
            min_item_margin=self.min_item_margin,
            min_plan_margin=self.min_plan_margin,
            match_competitor=self.match_competitor,
            pinned=list(self.pinned),
            pinned_discounts=dict(self.pinned_discounts),
            excluded=list(self.excluded),
        )

    def with_constraints(self, constraints: PlanConstraints) -> PlanRequest:
        """This request with the constraint fields of ``constraints``."""
        fields = constraints.model_dump(exclude={"service_level"})
        fields["pinned"], fields["excluded"] = tuple(fields["pinned"]), tuple(fields["excluded"])
        return self.model_copy(update=fields)

    def solver_options(self) -> SolverOptions:
        return SolverOptions(
            time_limit_s=self.time_limit_s, relative_gap=self.relative_gap, deterministic=True
        )


@dataclass(frozen=True)
class PlanInputs:
    """What a solve needs besides the constraints: the demand model and the candidates of one sale date."""

    sale_date: dt.date
    model: DemandModel
    model_current: bool
    candidates: Candidates


class PlanProposal(BaseModel):
    """A solved plan, not yet saved: the request as answered, the optimiser's result and the evidence."""

    proposal_id: str = Field(description="Stable id of this answer: same request, same data, same id.")
    sale_date: dt.date
    request: PlanRequest
    result: PlanResult
    demand_model_id: int | None
    model_window: tuple[dt.date, dt.date]
    model_current: bool = Field(description="False when newer orders exist than the model was fitted on.")
    candidates: int
    titles: dict[str, str] = Field(description="Titles of the planned SKUs.")
    signal_ids: dict[str, list[int]] = Field(description="Market signals that moved each planned SKU.")
    inputs: dict[str, Any] = Field(repr=False, description="The optimiser's per-SKU inputs (stored).")
    evidence: dict[str, ForecastEvidence] = Field(
        default_factory=dict, description="Per planned SKU: what it sold before, beside its forecast."
    )
    notes: list[str] = Field(default_factory=list)


class PlanComparison(BaseModel):
    """A plan beside an alternative (one change to its request), and how they differ."""

    change: str
    base: PlanProposal
    alternative: PlanProposal | None
    difference: WhatIfResult = Field(repr=False)
    affected: list[AffectedSku] = Field(
        default_factory=list, description="With a market event: the touched SKUs either plan features."
    )


def resolve_sale_date(request: PlanRequest, today: dt.date) -> dt.date:
    """The request's sale date, tomorrow by default; refused when past or beyond the planning horizon."""
    day = request.sale_date or today + dt.timedelta(days=1)
    if day < today:
        raise PlanRequestError(
            f"the sale date {day} is in the past (today is {today}); plan a day from {today} on"
        )
    if day > today + dt.timedelta(days=MAX_HORIZON_DAYS):
        raise PlanRequestError(
            f"the sale date {day} is more than {MAX_HORIZON_DAYS} days ahead of today ({today}); "
            "the demand model does not forecast that far"
        )
    return day


def plan_inputs(
    session: Session,
    sale_date: dt.date,
    ladder: tuple[float, ...] = DEFAULT_LADDER,
    assume_stock: int | None = None,
) -> PlanInputs:
    """The latest stored demand model and the candidates of ``sale_date`` priced on ``ladder``."""
    model = load_latest_demand_model(session)
    if model is None:
        raise DemandModelError("no demand model has been fitted yet: run `python cli.py fit` first")
    candidates = build_candidates(session, sale_date, model, ladder=ladder, assume_stock=assume_stock)
    return PlanInputs(sale_date, model, is_current(session, model), candidates)


def guarded_candidates(inputs: PlanInputs, request: PlanRequest) -> Candidates:
    """The candidates with the forecast guard's allocation caps of ``request`` (none when it is off)."""
    if not request.guard_cap:
        return inputs.candidates
    caps = guard_caps(inputs.model, inputs.candidates.skus, request.guard_factor)
    return dataclasses.replace(inputs.candidates, max_units=caps)


def _evidence(
    model: DemandModel, cand: Candidates, request: PlanRequest, result: PlanResult
) -> dict[str, ForecastEvidence]:
    factor = request.guard_factor
    pos = cand.index()
    out = {}
    for item in result.items:
        cap = int(cand.max_units[pos[item.sku]]) if cand.max_units is not None else 0
        ev = forecast_evidence(model, item.sku, item.forecast_units, factor, cap or None)
        if ev is not None:
            out[item.sku] = ev
    return out


def _check_skus(session: Session, request: PlanRequest) -> None:
    for sku in (*request.pinned, *request.pinned_discounts, *request.excluded):
        get_product(session, sku)


def _proposal_id(request: PlanRequest, inputs: dict[str, Any], model_id: int | None) -> str:
    text = json.dumps(
        {"request": request.model_dump(mode="json"), "inputs": inputs, "model": model_id}, sort_keys=True
    )
    return "P" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _proposal(session: Session, request: PlanRequest, inputs: PlanInputs, result: PlanResult) -> PlanProposal:
    cand = guarded_candidates(inputs, request)
    stored_inputs = candidate_inputs(cand)
    planned = set(result.skus)
    pos = cand.index()
    titles = {
        str(sku): str(title)
        for sku, title in session.execute(
            select(Product.sku, Product.title).where(Product.sku.in_(sorted(planned)))
        ).all()
    }
    model = inputs.model
    notes = []
    assumed = int(cand.meta.get("assumed_stock") or 0)
    if assumed:
        units = request.assume_stock or 0
        notes.append(f"{assumed:,} SKUs have no stock level: planned on the assumed {units:,} units each")
    estimated = sorted(set(cand.meta.get("estimated_costs") or []) & planned)
    if estimated:
        shown = ", ".join(estimated[:5]) + (" ..." if len(estimated) > 5 else "")
        notes.append(
            f"the costs of {len(estimated)} planned SKUs are estimated, not imported ({shown}): their "
            "margins and profits are estimates too"
        )
    evidence = _evidence(model, cand, request, result)
    flagged = [ev for ev in evidence.values() if ev.flagged]
    if flagged:
        what = (
            "their allocation is capped at that bound" if request.guard_cap else "not capped (the cap is off)"
        )
        notes.append(
            f"{len(flagged)} item(s) are forecast above {flagged[0].factor:g}x the most they sold on a "
            f"comparable day; {what}: " + "; ".join(ev.summary() for ev in flagged[:5])
        )
    elif result.items and not evidence:
        notes.append(
            f"demand model {model.id} keeps no sales evidence to check its forecasts against: refit "
            "(`python cli.py fit`)"
        )
    if not result.items:
        notes.append("no SKU was planned: no candidate has stock above safety stock and an allowed price")
    if not inputs.model_current:
        notes.append(
            f"demand model {model.id} was fitted on orders up to {model.window_end}; newer orders are not in "
            "it (`python cli.py fit` refits; `plan` and the daily draft refit first)"
        )
    return PlanProposal(
        proposal_id=_proposal_id(request, stored_inputs, model.id),
        sale_date=inputs.sale_date,
        request=request,
        result=result,
        demand_model_id=model.id,
        model_window=(model.window_start, model.window_end),
        model_current=inputs.model_current,
        candidates=cand.n,
        titles={sku: titles.get(sku, "") for sku in result.skus},
        signal_ids={sku: [int(i) for i in cand.grid.signal_ids[pos[sku]]] for sku in result.skus},
        inputs=stored_inputs,
        evidence=evidence,
        notes=notes,
    )


def propose_plan(
    session: Session, request: PlanRequest, *, today: dt.date, inputs: PlanInputs | None = None
) -> PlanProposal:
    """Solve ``request`` for its sale date (default: the day after ``today``) on the shop's data.

    ``inputs`` reuses the model and candidates of an earlier call for the same date and ladder. Raises
    :class:`PlanRequestError`, :class:`~tools.demand.DemandModelError`, :class:`~tools.catalog.UnknownSku`
    and the optimiser's :class:`~tools.optimizer.InfeasiblePlan`.
    """
    day = resolve_sale_date(request, today)
    request = request.model_copy(update={"sale_date": day})
    _check_skus(session, request)
    if inputs is None or inputs.sale_date != day or inputs.candidates.ladder != request.ladder:
        inputs = plan_inputs(session, day, request.ladder, request.assume_stock)
    result = optimize_plan(
        guarded_candidates(inputs, request), request.constraints(), request.weights, request.solver_options()
    )
    return _proposal(session, request, inputs, result)


def compare_plans(
    session: Session,
    request: PlanRequest,
    *,
    today: dt.date,
    pin: str | None = None,
    pin_discount: float | None = None,
    exclude: str | None = None,
    changes: dict[str, Any] | None = None,
    event: MarketEvent | None = None,
) -> PlanComparison:
    """The plan of ``request`` beside the plan with one SKU pinned (at ``pin_discount``, or at a discount
    the solver picks) or excluded, or constraints changed, or under a hypothetical market ``event``."""
    for sku in (pin, exclude):
        if sku:
            get_product(session, sku)
    day = resolve_sale_date(request, today)
    inputs = plan_inputs(session, day, request.ladder, request.assume_stock)
    base = propose_plan(session, request, today=today, inputs=inputs)
    alt_constraints, change = apply_change(
        base.request.constraints(), pin=pin, pin_discount=pin_discount, exclude=exclude, changes=changes
    )
    alt_request = base.request.with_constraints(alt_constraints)
    alt_inputs = inputs
    if event is not None:
        alt_inputs = dataclasses.replace(inputs, candidates=with_event(inputs.candidates, event))
        change = event.describe() if change == "no change" else f"{change}, {event.describe()}"
    try:
        alternative = propose_plan(session, alt_request, today=today, inputs=alt_inputs)
    except InfeasiblePlan as exc:
        difference = plan_difference(change, base.result, None, str(exc))
        affected = affected_skus(inputs.candidates, event, base.result, None) if event else []
        return PlanComparison(
            change=change, base=base, alternative=None, difference=difference, affected=affected
        )
    return PlanComparison(
        change=change,
        base=base,
        alternative=alternative,
        difference=plan_difference(change, base.result, alternative.result),
        affected=affected_skus(inputs.candidates, event, base.result, alternative.result) if event else [],
    )


def trade_offs(
    session: Session,
    request: PlanRequest,
    *,
    today: dt.date,
    points: int = 5,
    secondary: Literal["revenue", "sell_through"] = "revenue",
) -> ParetoFrontier:
    """Plans trading expected profit against revenue or sell-through for the request's sale date."""
    day = resolve_sale_date(request, today)
    request = request.model_copy(update={"sale_date": day})
    _check_skus(session, request)
    inputs = plan_inputs(session, day, request.ladder, request.assume_stock)
    return pareto_frontier(
        guarded_candidates(inputs, request),
        request.constraints(),
        request.solver_options(),
        points=points,
        secondary=secondary,
    )


def save_proposal(
    session: Session, proposal: PlanProposal, *, created_by: str, notes: str | None = None
) -> int:
    """Store ``proposal`` as a draft plan (with its inputs) in the caller's transaction; returns its id."""
    return save_draft_plan(
        session,
        proposal.result,
        sale_date=proposal.sale_date,
        inputs={
            **proposal.inputs,
            "proposal_id": proposal.proposal_id,
            "item_signals": proposal.signal_ids,
            "item_evidence": {sku: ev.model_dump(mode="json") for sku, ev in proposal.evidence.items()},
        },
        created_by=created_by,
        notes=notes,
    )


def saved_draft_of(session: Session, proposal: PlanProposal) -> FlashSalePlan | None:
    """The draft plan already saved from this very proposal (the same request on the same data and demand
    model: the same ``proposal_id``), if any. Runs of ``plan`` that hold the job lock (see
    :func:`db.write_lock.hold_job_lock`) and check this save one draft, however many run at once."""
    drafts = session.scalars(
        select(FlashSalePlan)
        .where(FlashSalePlan.sale_date == proposal.sale_date, FlashSalePlan.status == PlanStatus.DRAFT)
        .order_by(FlashSalePlan.id)
    )
    for plan in drafts:
        if ((plan.constraints or {}).get("inputs") or {}).get("proposal_id") == proposal.proposal_id:
            return plan
    return None
