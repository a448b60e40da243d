"""A plan in the terminal: the items as a table that fits the terminal, and the solver's facts in words.

Figures are never wrapped or cut (:mod:`tools.table_fit`): when the terminal is too narrow for every
column, money goes to short units and the least important columns are left out (the caption says which,
and that ``--wide`` shows them all).
"""

from __future__ import annotations

from rich.table import Table

from tools.formatting import format_cents, short_cents
from tools.optimizer import BindingConstraint
from tools.planning import PlanProposal
from tools.plans import StoredPlan, StoredPlanItem
from tools.table_fit import FitColumn, fit_table


def _sku_cell(item: StoredPlanItem, pinned: set[str]) -> str:
    flagged = item.evidence is not None and item.evidence.flagged
    return item.sku + (" *" if item.sku in pinned else "") + (" !" if flagged else "")


def plan_table(plan: StoredPlan, *, width: int | None = None) -> Table:
    """The plan's items as a table no wider than ``width`` (None: every column, full figures): money in
    short units first, then the least important columns left out, in order, until the rest fits whole."""
    pinned = {str(s) for s in plan.constraints.get("pinned") or []}
    items = plan.items
    caption = "sold~: expected units sold within the allocation; * pinned"
    if any(i.evidence is not None and i.evidence.flagged for i in items):
        caption += "; ! forecast above the guard's bound (see the note)"
    columns = [
        FitColumn("SKU", [_sku_cell(i, pinned) for i in items], left=True),
        FitColumn("category", [i.category for i in items], left=True, drop_order=4),
        FitColumn("off", [f"{i.discount:.0%}" for i in items]),
        FitColumn("price", [format_cents(i.sale_price_cents) for i in items], drop_order=3),
        FitColumn("alloc", [f"{i.allocated_units:,}" for i in items]),
        FitColumn("sold~", [f"{i.expected_units:,.1f}" for i in items]),
        FitColumn(
            "revenue",
            [format_cents(i.expected_revenue_cents) for i in items],
            short=[short_cents(i.expected_revenue_cents) for i in items],
            drop_order=2,
        ),
        FitColumn(
            "profit",
            [format_cents(i.expected_profit_cents) for i in items],
            short=[short_cents(i.expected_profit_cents) for i in items],
        ),
        FitColumn("margin", [f"{i.margin:.0%}" for i in items], drop_order=1),
    ]
    title = f"Flash-sale plan {plan.id} for {plan.sale_date} ({plan.status})"
    return fit_table(title, columns, width=width, caption=caption)


def binding_line(b: BindingConstraint) -> str:
    """A binding constraint and what relaxing it is worth, in money."""
    return f"binding: {b.label} ({b.marginal_unit}: +{format_cents(b.marginal_value_cents)} objective value)"


def summary_lines(plan: StoredPlan, proposal: PlanProposal, *, binding: int = 6) -> list[str]:
    """The plan's totals, the solver's facts, the service's notes and the binding constraints, in words."""
    result = proposal.result
    lines = [
        f"{len(plan.items)} SKUs; expected revenue {format_cents(plan.expected_revenue_cents)}, gross profit "
        f"{format_cents(plan.expected_profit_cents)}, markdown {format_cents(result.markdown_cost_cents)}, "
        f"sell-through {result.sell_through:.0%}; objective {format_cents(result.objective)} (LP bound "
        f"{format_cents(result.lp_bound)}, gap {result.gap:.3%}, {result.status}); "
        f"{result.stats.time_total_s:.1f} s; demand model {proposal.demand_model_id}"
    ]
    lines += [f"Note: {note}" for note in proposal.notes]
    lines += [f"  {binding_line(b)}" for b in result.binding[:binding]]
    return lines
