"""A plan in the terminal: the items as a table that fits the terminal, and the solver's facts in words.

Figures are never wrapped or cut: when the terminal is too narrow for every column, the least important
columns are left out (and the caption says which, and that ``--wide`` shows them all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

from tools.formatting import format_cents
from tools.optimizer import BindingConstraint
from tools.planning import PlanProposal
from tools.plans import StoredPlan, StoredPlanItem


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[StoredPlanItem], str]
    left: bool = False
    drop_order: int | None = None  # None: always shown; lower numbers are left out first


_COLUMNS = (
    _Column("SKU", lambda i: i.sku, left=True),
    _Column("category", lambda i: i.category, left=True),
    _Column("off", lambda i: f"{i.discount:.0%}"),
    _Column("price", lambda i: format_cents(i.sale_price_cents), drop_order=3),
    _Column("alloc", lambda i: f"{i.allocated_units:,}"),
    _Column("sold~", lambda i: f"{i.expected_units:,.1f}"),
    _Column("revenue", lambda i: format_cents(i.expected_revenue_cents), drop_order=2),
    _Column("profit", lambda i: format_cents(i.expected_profit_cents)),
    _Column("margin", lambda i: f"{i.margin:.0%}", drop_order=1),
)


def _cell(column: _Column, item: StoredPlanItem, pinned: set[str]) -> str:
    text = column.cell(item)
    if column.header != "SKU":
        return text
    flagged = item.evidence is not None and item.evidence.flagged
    return text + (" *" if item.sku in pinned else "") + (" !" if flagged else "")


def _table(plan: StoredPlan, columns: list[_Column], pinned: set[str], caption: str) -> Table:
    table = Table(
        title=f"Flash-sale plan {plan.id} for {plan.sale_date} ({plan.status})",
        caption=caption,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in columns:
        table.add_column(column.header, justify="left" if column.left else "right", no_wrap=True)
    for item in plan.items:
        table.add_row(*(_cell(column, item, pinned) for column in columns))
    return table


def _natural_width(table: Table) -> int:
    """How wide ``table`` is when nothing is squeezed."""
    return Console(width=10_000).measure(table).maximum


def plan_table(plan: StoredPlan, *, width: int | None = None) -> Table:
    """The plan's items as a table no wider than ``width`` (None: every column): the least important
    columns are left out, in order, until the rest fits whole."""
    pinned = {str(s) for s in plan.constraints.get("pinned") or []}
    caption = "sold~: expected units sold within the allocation; * pinned"
    if any(i.evidence is not None and i.evidence.flagged for i in plan.items):
        caption += "; ! forecast above the guard's bound (see the note)"
    columns = list(_COLUMNS)
    droppable = sorted((c for c in _COLUMNS if c.drop_order is not None), key=lambda c: c.drop_order or 0)
    dropped: list[str] = []
    table = _table(plan, columns, pinned, caption)
    while width is not None and droppable and _natural_width(table) > width:
        column = droppable.pop(0)
        columns.remove(column)
        dropped.append(column.header)
        note = f". Left out at this width: {', '.join(dropped)} (--wide shows them)"
        table = _table(plan, columns, pinned, caption + note)
    return table


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
