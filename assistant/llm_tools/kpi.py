"""The KPI tool: what a period or a sale earned."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.base import ToolArgs, ToolDate, llm_tool
from tools.kpi import default_period
from tools.kpi import kpi_report as make_kpi_report


class KpiArgs(ToolArgs):
    start: ToolDate | None = Field(
        None,
        description="First day (YYYY-MM-DD); with plan_id defaults to its date; with neither, the last "
        "closed sale (else the last 30 days).",
    )
    end: ToolDate | None = Field(None, description="Last day, inclusive; default: start.")
    by: Literal["sku", "category", "brand"] | None = Field(None, description="Group the figures.")
    plan_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Only this plan's SKUs (and its sale date)."
    )
    top: int = Field(15, ge=1, le=50, description="Most groups to return (largest GMV first).")


@llm_tool(KpiArgs)
def kpi_report(deps: Deps, session: Session, args: KpiArgs) -> dict[str, Any]:
    """KPIs (GMV, units, gross profit, margin, discount depth, buyers, sell-through, stock-outs,
    incremental units) for a date range or a plan, optionally by SKU, category or brand."""
    start, end, note = args.start, args.end or args.start, None
    if start is None and args.plan_id is None:
        start, end, note = default_period(session, deps.today())
    report = make_kpi_report(session, start, end, by=args.by, plan_id=args.plan_id)
    if note:
        report.notes.insert(0, note)
    data = report.model_dump(mode="json")
    data["groups"] = data["groups"][: args.top]
    data["daily"] = data["daily"][:31]
    data["plan_items"] = data["plan_items"][:30]
    data["note_on_units"] = "ratios (margin, sell_through, shares) are fractions: 0.25 means 25 %"
    return data
