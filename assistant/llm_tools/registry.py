"""LangChain tools over the typed module APIs: what the assistant's model may call.

Each tool has a pydantic argument model (the JSON schema the model sees, with a description per field),
opens one unit of work on the database, calls one library function and returns the JSON of its pydantic
result. Bad arguments and domain errors come back as ``{"error": ..., "hint": ...}`` so that the model can
correct itself instead of the turn failing. Dates default to the shop's "today" from ``Deps.clock``.

No tool writes prices or approves plans: the only write is ``save_draft_plan`` (a draft a person must
approve), and ``READ_ONLY_TOOLS``/``WRITING_TOOLS`` make that checkable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from assistant.deps import Deps
from db.audit import jsonable
from db.engine import session_scope
from db.errors import FlashSaleError
from tools import catalog
from tools.readonly_sql import run_readonly_sql

A = TypeVar("A", bound=BaseModel)

MAX_TOOL_OUTPUT_CHARS = 12_000


class ToolError(BaseModel):
    """What a tool returns instead of a result: what went wrong and what to try next."""

    error: str
    hint: str


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _json(value: Any) -> str:
    text = json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_TOOL_OUTPUT_CHARS:
        return json.dumps(
            {
                "error": f"result too large ({len(text)} characters)",
                "hint": "narrow the question: fewer SKUs, a shorter window, a smaller limit",
            }
        )
    return text


def error_json(error: str, hint: str) -> str:
    return ToolError(error=error, hint=hint).model_dump_json()


def _validation_hint(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def is_error(output: str) -> bool:
    """Whether a tool's output is a :class:`ToolError`."""
    try:
        data = json.loads(output)
    except (TypeError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {"error", "hint"}


def make_tool(
    deps: Deps,
    name: str,
    description: str,
    args_model: type[A],
    run: Callable[[Session, A], Any],
) -> StructuredTool:
    """A StructuredTool that validates ``args_model``, runs ``run`` in one transaction and returns JSON."""

    def call(**kwargs: Any) -> str:
        try:
            args = args_model.model_validate(kwargs)
        except ValidationError as exc:
            return error_json(f"invalid arguments for {name}", _validation_hint(exc))
        try:
            with session_scope(deps.session_factory) as session:
                return _json(run(session, args))
        except FlashSaleError as exc:
            return error_json(str(exc), "fix the arguments named in the error and call the tool again")
        except (ValueError, LookupError) as exc:
            return error_json(f"{type(exc).__name__}: {exc}", "check the arguments against the tool schema")

    def on_validation_error(exc: Exception) -> str:
        hint = _validation_hint(exc) if isinstance(exc, ValidationError) else str(exc)
        return error_json(f"invalid arguments for {name}", hint)

    return StructuredTool.from_function(
        func=call,
        name=name,
        description=description,
        args_schema=args_model,
        handle_validation_error=on_validation_error,
    )


# ---- argument models ----


class SearchProductsArgs(ToolArgs):
    query: str | None = Field(
        None, description="Words to find in the SKU or title, e.g. 'wireless headphones'."
    )
    category: str | None = Field(None, description="Exact category name (case-insensitive).")
    brand: str | None = Field(None, description="Exact brand name (case-insensitive).")
    limit: int = Field(20, ge=1, le=100, description="Most products to return.")


class SkuArgs(ToolArgs):
    sku: str = Field(description="The product's SKU, exactly as in the catalogue.")


class SalesHistoryArgs(ToolArgs):
    sku: str | None = Field(None, description="One SKU (give at most one of sku, category, brand).")
    category: str | None = Field(None, description="A category name.")
    brand: str | None = Field(None, description="A brand name.")
    start: dt.date | None = Field(None, description="First day (YYYY-MM-DD); default: `days` before end.")
    end: dt.date | None = Field(None, description="Last day (YYYY-MM-DD), inclusive; default: yesterday.")
    days: int = Field(28, ge=1, le=366, description="Window length when start is not given.")

    @model_validator(mode="after")
    def _one_scope(self) -> SalesHistoryArgs:
        if sum(x is not None for x in (self.sku, self.category, self.brand)) > 1:
            raise ValueError("give at most one of sku, category, brand")
        return self


class InventoryArgs(ToolArgs):
    skus: list[str] | None = Field(None, max_length=100, description="SKUs to look up; omit for all.")
    category: str | None = Field(None, description="Only this category.")
    limit: int = Field(50, ge=1, le=200, description="Most rows to return.")


class CompetitorPricesArgs(ToolArgs):
    sku: str | None = Field(None, description="One SKU; omit for every SKU (or a category).")
    category: str | None = Field(None, description="Only this category.")
    days: int = Field(14, ge=1, le=180, description="Look back this many days for quotes.")
    limit: int = Field(50, ge=1, le=200, description="Most rows to return.")


class MarketSignalsArgs(ToolArgs):
    date: dt.date | None = Field(None, description="Day the signals must be valid on; default: tomorrow.")
    scope_value: str | None = Field(None, description="Only signals about this SKU, category or brand.")


class SqlArgs(ToolArgs):
    sql: str = Field(
        description="One read-only SELECT over the shop tables (product, inventory, price_history, orders, "
        "order_line, competitor_price, review, market_news, market_signal, flash_sale_plan, plan_item, "
        "kpi_result, customer). Money columns are integer cents.",
        max_length=5000,
    )
    max_rows: int = Field(100, ge=1, le=200, description="Most rows to return.")


class KpiArgs(ToolArgs):
    start: dt.date | None = Field(
        None, description="First day (YYYY-MM-DD); with plan_id defaults to its date."
    )
    end: dt.date | None = Field(None, description="Last day, inclusive; default: start.")
    by: Literal["sku", "category", "brand"] | None = Field(None, description="Group the figures.")
    plan_id: int | None = Field(None, ge=1, description="Only this plan's SKUs (and its sale date).")
    top: int = Field(15, ge=1, le=50, description="Most groups to return (largest GMV first).")


class ExplainPlanArgs(ToolArgs):
    plan_id: int | None = Field(None, ge=1, description="The plan's id; omit to use sale_date or the newest.")
    sale_date: dt.date | None = Field(None, description="Newest plan for this sale day (YYYY-MM-DD).")
    sku: str | None = Field(None, description="Also say whether and why this SKU is in the plan.")
    list_recent: bool = Field(False, description="Instead list the 20 newest plans (id, date, status).")


class PlanArgs(ToolArgs):
    sale_date: dt.date | None = Field(None, description="Sale day (YYYY-MM-DD); default: tomorrow.")
    slots: int = Field(20, ge=1, le=200, description="Most SKUs in the sale.")
    min_item_margin: float = Field(
        0.0, ge=-0.5, lt=1.0, description="Least (price - cost) / price per item, a fraction (0.1 = 10 %)."
    )
    markdown_budget_cents: int | None = Field(
        None, ge=0, description="Most expected markdown (list - sale price) x units, in cents."
    )
    category_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per named category.")
    default_category_max: int | None = Field(None, ge=0, description="Most SKUs of any other category.")
    match_competitor: bool = Field(False, description="Sale price at or below the competitor's price.")
    pinned: list[str] = Field(
        default_factory=list, max_length=50, description="SKUs that must be in the sale."
    )
    excluded: list[str] = Field(default_factory=list, max_length=200, description="SKUs that must stay out.")
    weight_revenue: float = Field(0.0, ge=0, description="Objective weight of expected revenue.")
    weight_profit: float = Field(1.0, ge=0, description="Objective weight of expected gross profit.")
    weight_clearance: float = Field(1.0, ge=0, description="Objective weight of clearing excess stock.")
    explain_skus: list[str] = Field(
        default_factory=list, max_length=20, description="SKUs whose in/out reason to include."
    )


class WhatIfArgs(PlanArgs):
    pin: str | None = Field(None, description="Force this SKU into the alternative plan.")
    exclude: str | None = Field(None, description="Keep this SKU out of the alternative plan.")
    alt_slots: int | None = Field(None, ge=1, le=200, description="Slots of the alternative plan.")
    alt_min_item_margin: float | None = Field(None, ge=-0.5, lt=1.0, description="Alternative item margin.")
    alt_markdown_budget_cents: int | None = Field(None, ge=0, description="Alternative markdown budget.")


class ParetoArgs(PlanArgs):
    secondary: Literal["revenue", "sell_through"] = Field(
        "revenue", description="What to trade expected profit against."
    )
    points: int = Field(5, ge=2, le=9, description="Most plans on the frontier.")


class SaveDraftArgs(PlanArgs):
    notes: str | None = Field(None, max_length=1000, description="Why this draft (shown to the approver).")


class ForecastArgs(ToolArgs):
    skus: list[str] = Field(min_length=1, max_length=30, description="SKUs to forecast (at most 30).")
    discounts: list[float] = Field(
        default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        min_length=1,
        max_length=10,
        description="Discounts off the list price to forecast at, as fractions (0.2 = 20 % off).",
    )
    date: dt.date | None = Field(None, description="Sale day (YYYY-MM-DD); default: tomorrow.")
    featured: bool = Field(True, description="Whether the SKUs are featured in a flash sale that day.")
    use_signals: bool = Field(True, description="Apply the market signals active that day.")

    @model_validator(mode="after")
    def _discounts_in_range(self) -> ForecastArgs:
        bad = [d for d in self.discounts if not 0.0 <= d < 1.0]
        if bad:
            raise ValueError(f"discounts must be fractions in [0, 1): {bad} (write 0.2 for 20 %)")
        return self


class ForecastPoint(BaseModel):
    discount: float
    price_cents: int
    expected_units: float
    p10_units: float
    p90_units: float


class SkuForecast(BaseModel):
    sku: str
    list_price_cents: int
    elasticity: float
    base_units_per_day: float
    flash_lift: float
    signal_ids: list[int]
    points: list[ForecastPoint]


class ForecastResult(BaseModel):
    date: dt.date
    demand_model_id: int | None
    featured: bool
    forecasts: list[SkuForecast]


def forecast_demand(session: Session, args: ForecastArgs, on: dt.date) -> ForecastResult:
    """Expected units (and the 10 %/90 % quantiles) of each SKU at each discount, from the stored model."""
    import numpy as np

    from tools.catalog import get_product
    from tools.demand import DemandModelError, load_latest_demand_model
    from tools.signals import active_signals

    model = load_latest_demand_model(session)
    if model is None:
        raise DemandModelError("no demand model has been fitted yet: run `python cli.py fit` first")
    products = [get_product(session, sku) for sku in args.skus]
    lists = np.array([p.list_price_cents for p in products], dtype=np.int64)
    discounts = np.array(args.discounts, dtype=float)
    prices = np.maximum(1, np.rint(lists[:, None] * (1.0 - discounts[None, :]))).astype(np.int64)
    signals = active_signals(session, on) if args.use_signals else None
    grid = model.forecast_grid(on, args.skus, prices, featured=args.featured, signals=signals)
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
                    for j, d in enumerate(discounts)
                ],
            )
        )
    return ForecastResult(date=on, demand_model_id=model.id, featured=args.featured, forecasts=out)


class PlanSummaryItem(BaseModel):
    sku: str
    category: str
    discount: float
    list_price_cents: int
    sale_price_cents: int
    allocated_units: int
    expected_units: float
    expected_revenue_cents: int
    expected_profit_cents: int
    margin: float
    reason: str


class PlanOutcome(BaseModel):
    """What the optimiser proposes (not saved: save_draft_plan saves it)."""

    sale_date: dt.date
    status: str
    objective: float
    expected_revenue_cents: int
    expected_profit_cents: int
    expected_units: float
    allocated_units: int
    markdown_cost_cents: int
    gap_vs_lp_bound: float
    demand_model_id: int | None
    candidates: int
    items: list[PlanSummaryItem]
    binding_constraints: list[dict[str, Any]]
    reasons: dict[str, str] = Field(description="Why each SKU in explain_skus is in or out.")
    reasons_out_by_code: dict[str, int] = Field(description="How many candidates were left out, by reason.")


def _plan_inputs(session: Session, a: PlanArgs, on: dt.date) -> tuple[Any, Any, Any, Any]:
    from tools.demand import DemandModelError, load_latest_demand_model
    from tools.optimizer import ObjectiveWeights, PlanConstraints, SolverOptions
    from tools.plans import build_candidates

    model = load_latest_demand_model(session)
    if model is None:
        raise DemandModelError("no demand model has been fitted yet: run `python cli.py fit` first")
    for sku in [*a.pinned, *a.excluded, *a.explain_skus]:
        catalog.get_product(session, sku)
    constraints = PlanConstraints(
        slots=a.slots,
        min_item_margin=a.min_item_margin,
        markdown_budget_cents=a.markdown_budget_cents,
        category_max=a.category_max,
        default_category_max=a.default_category_max,
        match_competitor=a.match_competitor,
        pinned=a.pinned,
        excluded=a.excluded,
    )
    weights = ObjectiveWeights(revenue=a.weight_revenue, profit=a.weight_profit, clearance=a.weight_clearance)
    options = SolverOptions(time_limit_s=20.0, deterministic=True)
    return build_candidates(session, on, model), constraints, weights, options


def _outcome(result: Any, on: dt.date, explain: list[str], n_candidates: int) -> PlanOutcome:
    from collections import Counter

    out_codes = Counter(r.code for r in result.reasons if not r.selected)
    reasons = {}
    for sku in explain:
        try:
            r = result.reason_for(sku)
            prefix = "" if r.reason.lower().startswith(("in", "out")) else ("in: " if r.selected else "out: ")
            reasons[sku] = prefix + r.reason
        except KeyError:
            reasons[sku] = "not a candidate (no demand model estimate or no list price)"
    return PlanOutcome(
        sale_date=on,
        status=result.status,
        objective=round(result.objective, 2),
        expected_revenue_cents=result.expected_revenue_cents,
        expected_profit_cents=result.expected_profit_cents,
        expected_units=round(result.expected_units, 2),
        allocated_units=result.allocated_units,
        markdown_cost_cents=result.markdown_cost_cents,
        gap_vs_lp_bound=round(result.gap, 5),
        demand_model_id=result.demand_model_id,
        candidates=n_candidates,
        items=[
            PlanSummaryItem(
                sku=it.sku,
                category=it.category,
                discount=it.discount,
                list_price_cents=it.list_price_cents,
                sale_price_cents=it.sale_price_cents,
                allocated_units=it.allocated_units,
                expected_units=round(it.expected_units, 2),
                expected_revenue_cents=it.expected_revenue_cents,
                expected_profit_cents=it.expected_profit_cents,
                margin=round(it.margin, 4),
                reason=it.reason,
            )
            for it in result.items
        ],
        binding_constraints=[
            {"constraint": b.label, "dual": round(b.dual, 4), "slack": round(b.slack, 4)}
            for b in result.binding[:10]
        ],
        reasons=reasons,
        reasons_out_by_code=dict(out_codes),
    )


# ---- tools ----


def build_tools(deps: Deps) -> list[StructuredTool]:
    """Every tool the assistant's model may call, bound to ``deps``."""

    def today() -> dt.date:
        return deps.today()

    def search(session: Session, a: SearchProductsArgs) -> Any:
        return catalog.search_products(
            session, query=a.query, category=a.category, brand=a.brand, limit=a.limit
        )

    def details(session: Session, a: SkuArgs) -> Any:
        return catalog.product_details(session, a.sku, as_of=deps.now())

    def sales(session: Session, a: SalesHistoryArgs) -> Any:
        end = a.end or today() - dt.timedelta(days=1)
        start = a.start or end - dt.timedelta(days=a.days - 1)
        return catalog.sales_history(
            session, start=start, end=end, sku=a.sku, category=a.category, brand=a.brand
        )

    def stock(session: Session, a: InventoryArgs) -> Any:
        return catalog.inventory(session, as_of=deps.now(), skus=a.skus, category=a.category, limit=a.limit)

    def competitors(session: Session, a: CompetitorPricesArgs) -> Any:
        return catalog.competitor_prices(
            session, as_of=deps.now(), sku=a.sku, category=a.category, days=a.days, limit=a.limit
        )

    def signals(session: Session, a: MarketSignalsArgs) -> Any:
        on = a.date or today() + dt.timedelta(days=1)
        return catalog.market_signals(session, on=on, scope_value=a.scope_value)

    def sql(session: Session, a: SqlArgs) -> Any:
        return run_readonly_sql(session.get_bind(), a.sql, max_rows=a.max_rows)  # type: ignore[arg-type]

    def kpis(session: Session, a: KpiArgs) -> Any:
        from tools.kpi import kpi_report

        start = a.start
        end = a.end or a.start
        report = kpi_report(session, start, end, by=a.by, plan_id=a.plan_id)
        data = report.model_dump(mode="json")
        data["groups"] = data["groups"][: a.top]
        data["daily"] = data["daily"][:31]
        data["plan_items"] = data["plan_items"][:30]
        data["note_on_units"] = "ratios (margin, sell_through, shares) are fractions: 0.25 means 25 %"
        return data

    def explain(session: Session, a: ExplainPlanArgs) -> Any:
        if a.list_recent:
            return {"plans": catalog.list_plans(session)}
        return catalog.stored_plan(session, plan_id=a.plan_id, sale_date=a.sale_date, sku=a.sku)

    solved: dict[str, tuple[Any, Any]] = {}  # plan arguments -> (result, candidates), for save_draft_plan

    def plan_key(a: PlanArgs, on: dt.date) -> str:
        fields = a.model_dump(mode="json", include=set(PlanArgs.model_fields) - {"explain_skus", "sale_date"})
        return json.dumps({"on": on.isoformat(), **fields}, sort_keys=True)

    def optimise(session: Session, a: PlanArgs) -> Any:
        from tools.optimizer import optimize_plan

        on = a.sale_date or today() + dt.timedelta(days=1)
        candidates, constraints, weights, options = _plan_inputs(session, a, on)
        result = optimize_plan(candidates, constraints, weights, options)
        solved.clear()
        solved[plan_key(a, on)] = (result, candidates)
        return _outcome(result, on, a.explain_skus, candidates.n)

    def whatif(session: Session, a: WhatIfArgs) -> Any:
        from tools.optimizer import what_if

        on = a.sale_date or today() + dt.timedelta(days=1)
        candidates, constraints, weights, options = _plan_inputs(session, a, on)
        for sku in (a.pin, a.exclude):
            if sku:
                catalog.get_product(session, sku)
        changes: dict[str, Any] = {}
        if a.alt_slots is not None:
            changes["slots"] = a.alt_slots
        if a.alt_min_item_margin is not None:
            changes["min_item_margin"] = a.alt_min_item_margin
        if a.alt_markdown_budget_cents is not None:
            changes["markdown_budget_cents"] = a.alt_markdown_budget_cents
        if not (a.pin or a.exclude or changes):
            raise ValueError(
                "say what changes: pin, exclude, alt_slots, alt_min_item_margin or alt_markdown_budget"
            )
        r = what_if(candidates, constraints, weights, options, pin=a.pin, exclude=a.exclude, changes=changes)
        return {
            "change": r.change,
            "base": _outcome(r.base, on, a.explain_skus, candidates.n).model_dump(
                include={"expected_revenue_cents", "expected_profit_cents", "expected_units", "objective"}
            )
            | {"skus": [it.sku for it in r.base.items]},
            "alternative": None
            if r.alternative is None
            else _outcome(r.alternative, on, a.explain_skus, candidates.n).model_dump(
                include={"expected_revenue_cents", "expected_profit_cents", "expected_units", "objective"}
            )
            | {"skus": [it.sku for it in r.alternative.items]},
            "infeasible_reason": r.infeasible_reason,
            "delta_profit_cents": r.delta_profit_cents,
            "delta_revenue_cents": r.delta_revenue_cents,
            "delta_objective": round(r.delta_objective, 2),
            "added": r.added,
            "removed": r.removed,
            "changed_discounts": {
                k: {"base": v[0], "alternative": v[1]} for k, v in r.changed_discounts.items()
            },
        }

    def pareto(session: Session, a: ParetoArgs) -> Any:
        from tools.optimizer import pareto_frontier

        on = a.sale_date or today() + dt.timedelta(days=1)
        candidates, constraints, _weights, options = _plan_inputs(session, a, on)
        frontier = pareto_frontier(candidates, constraints, options, points=a.points, secondary=a.secondary)
        data = frontier.model_dump(mode="json")
        data["sale_date"] = on
        data["note"] = "each point is a plan; more of the secondary measure costs expected profit"
        return data

    def save_draft(session: Session, a: SaveDraftArgs) -> Any:
        from tools.optimizer import optimize_plan
        from tools.plans import save_draft_plan

        on = a.sale_date or today() + dt.timedelta(days=1)
        key = plan_key(a, on)
        if key in solved:
            result, candidates = solved[key]
        else:
            candidates, constraints, weights, options = _plan_inputs(session, a, on)
            result = optimize_plan(candidates, constraints, weights, options)
        plan_id = save_draft_plan(
            session,
            result,
            candidates,
            sale_date=on,
            created_by=f"assistant:{deps.actor}"[:100],
            notes=a.notes,
        )
        return {
            "plan_id": plan_id,
            "status": "draft",
            "sale_date": on,
            "items": len(result.items),
            "expected_profit_cents": result.expected_profit_cents,
            "expected_revenue_cents": result.expected_revenue_cents,
            "next_step": f"a person approves it with `python cli.py plan-approve {plan_id} --by NAME`",
        }

    def forecast(session: Session, a: ForecastArgs) -> Any:
        return forecast_demand(session, a, a.date or today() + dt.timedelta(days=1))

    return [
        make_tool(
            deps,
            "search_products",
            "Find products by words in the SKU or title, by category or by brand. Use it to resolve a "
            "product name to its SKU before other tools.",
            SearchProductsArgs,
            search,
        ),
        make_tool(
            deps,
            "get_product_details",
            "One SKU's title, category, brand, cost, list and current price, margin, stock, reviews, "
            "latest competitor prices and units sold in the last 28 days.",
            SkuArgs,
            details,
        ),
        make_tool(
            deps,
            "get_sales_history",
            "Units and revenue per day for a SKU, a category, a brand or the whole shop over a date window.",
            SalesHistoryArgs,
            sales,
        ),
        make_tool(
            deps,
            "get_inventory",
            "Latest stock per SKU: on hand, reserved and available units.",
            InventoryArgs,
            stock,
        ),
        make_tool(
            deps,
            "get_competitor_prices",
            "Latest competitor quotes per SKU and competitor, with the gap to our current price.",
            CompetitorPricesArgs,
            competitors,
        ),
        make_tool(
            deps,
            "get_market_signals",
            "Market signals (typed demand multipliers extracted from news and reviews, with their sources) "
            "valid on a date, and the titles of the week's news.",
            MarketSignalsArgs,
            signals,
        ),
        make_tool(
            deps,
            "run_sql",
            "Run one read-only SELECT when no other tool answers the question. Cite the query in the answer.",
            SqlArgs,
            sql,
        ),
        make_tool(
            deps,
            "kpi_report",
            "KPIs (GMV, units, gross profit, margin, discount depth, buyers, sell-through, stock-outs, "
            "incremental units) for a date range or a plan, optionally by SKU, category or brand.",
            KpiArgs,
            kpis,
        ),
        make_tool(
            deps,
            "forecast_demand",
            "Forecast a day's demand of SKUs at several discounts from the fitted demand model: expected "
            "units with 10 %/90 % quantiles, the SKU's elasticity, flash-sale lift and the market signals "
            "applied.",
            ForecastArgs,
            forecast,
        ),
        make_tool(
            deps,
            "explain_plan",
            "A saved flash-sale plan (by id, sale date, or the newest): status, objective, constraints, "
            "solver facts and items with discount, sale price, allocated and forecast units, expected "
            "revenue and profit and the reason for each; with sku, whether and why that SKU is in it.",
            ExplainPlanArgs,
            explain,
        ),
        make_tool(
            deps,
            "optimize_plan",
            "Optimise the flash sale for a day under constraints (slots, margins, budget, category caps, "
            "pinned/excluded SKUs): the SKUs, discounts, allocations, expected revenue and profit, binding "
            "constraints, and why given SKUs are in or out. Does not save anything.",
            PlanArgs,
            optimise,
        ),
        make_tool(
            deps,
            "what_if",
            "Compare the optimal plan with an alternative: a SKU pinned or excluded, or different slots, "
            "margin or budget. Returns the change in expected profit and revenue and the SKUs added/removed.",
            WhatIfArgs,
            whatif,
        ),
        make_tool(
            deps,
            "pareto_frontier",
            "Trade-off plans between expected profit and revenue (or sell-through) for a sale day: each "
            "point is a plan with its expected profit, revenue, sell-through and SKUs.",
            ParetoArgs,
            pareto,
        ),
        make_tool(
            deps,
            "save_draft_plan",
            "Save the optimised plan (same arguments as optimize_plan) as a DRAFT for a person to approve. "
            "Only when the user asks to save it. It does not change any price.",
            SaveDraftArgs,
            save_draft,
        ),
    ]


# Tools that only read, and tools that write (with what they may write). A test checks every tool is listed.
READ_ONLY_TOOLS = frozenset(
    {
        "search_products",
        "get_product_details",
        "get_sales_history",
        "get_inventory",
        "get_competitor_prices",
        "get_market_signals",
        "run_sql",
        "kpi_report",
        "forecast_demand",
        "optimize_plan",
        "what_if",
        "pareto_frontier",
        "explain_plan",
    }
)
WRITING_TOOLS: dict[str, str] = {
    "save_draft_plan": "a draft flash_sale_plan (status draft) for a person to approve"
}
FORBIDDEN_TOOL_WORDS = ("approve", "set_price", "update_price", "write_price", "publish", "delete")
