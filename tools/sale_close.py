"""Close a sale once its day is over: KPIs and plan against actual into ``kpi_result``, the plan closed.

The closed revision is what the next ``fit`` reads: its SKUs were featured that day at its prices, and its
allocation caps that day's sales, so a SKU that sold out is censored demand (the fit knows demand was at
least what sold), not a low one. Earlier revisions of the sale stay superseded; drafts still open are
superseded too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import FlashSalePlan, KpiResult, PlanStatus
from tools.campaigns import PlanVsActual, plan_vs_actual
from tools.lifecycle import get_plan_row, move_plan, root_of, sale_revisions, supersede_open_drafts
from tools.plans import PlanStateError

KPI_KIND = "sale_close"


class CloseResult(BaseModel):
    sale_id: int
    plan_id: int
    revision: int
    kpi_result_id: int
    censored_skus: list[str] = Field(description="SKUs that sold out: their demand was at least what sold.")
    report: PlanVsActual


def closable_revision(session: Session, plan_id: int) -> FlashSalePlan:
    """The revision of the sale that a close closes: the live one, else the newest approved one."""
    revisions = sale_revisions(session, plan_id)
    for wanted in (PlanStatus.LIVE, PlanStatus.APPROVED):
        found = [p for p in revisions if p.status == wanted]
        if found:
            return found[-1]
    closed = [p for p in revisions if p.status == PlanStatus.CLOSED]
    if closed:
        raise PlanStateError(f"plan {plan_id}'s sale is already closed (revision {closed[-1].id})")
    row = get_plan_row(session, plan_id)
    raise PlanStateError(
        f"plan {plan_id} is {row.status.value}: only an approved or live sale is closed"
        + (" (approve and publish it first)" if row.status == PlanStatus.DRAFT else "")
    )


def close_sale(
    session: Session, plan_id: int, *, actor: str, now: dt.datetime, channel: str = "cli"
) -> CloseResult:
    """Close ``plan_id``'s sale after its day: store its KPIs and plan against actual, mark stock-outs."""
    plan = closable_revision(session, plan_id)
    over = dt.datetime.combine(plan.sale_date + dt.timedelta(days=1), dt.time.min)
    if now < over:
        raise PlanStateError(
            f"the sale of {plan.sale_date} runs until {over:%Y-%m-%d %H:%M}; close it after that "
            "(watch it meanwhile with `python cli.py plan status ID`)"
        )
    report = plan_vs_actual(session, plan.id, today=now.date())
    censored = sorted(i.sku for i in report.items if i.stocked_out)
    move_plan(
        session,
        plan.id,
        "close",
        actor=actor,
        now=now,
        channel=channel,
        detail={"sold_units": report.sold_units, "profit_cents": report.profit_cents, "censored": censored},
    )
    supersede_open_drafts(session, root_of(plan), plan.id, actor=actor, now=now, channel=channel)
    values: dict[str, Any] = {
        **report.model_dump(mode="json"),
        "censored_skus": censored,
        "revisions": [p.id for p in sale_revisions(session, plan.id)],
    }
    row = KpiResult(
        kind=KPI_KIND,
        scope=f"sale {root_of(plan)}",
        period_start=plan.sale_date,
        period_end=plan.sale_date,
        plan_id=plan.id,
        values=values,
        computed_at=now,
    )
    session.add(row)
    session.flush()
    return CloseResult(
        sale_id=root_of(plan),
        plan_id=plan.id,
        revision=plan.revision,
        kpi_result_id=int(row.id),
        censored_skus=censored,
        report=report,
    )


def sales_to_close(session: Session, today: dt.date) -> list[int]:
    """Ids of the approved or live plans whose sale day ended before ``today`` (one per sale)."""
    rows = session.scalars(
        select(FlashSalePlan)
        .where(
            FlashSalePlan.status.in_([PlanStatus.APPROVED, PlanStatus.LIVE]),
            FlashSalePlan.sale_date < today,
        )
        .order_by(FlashSalePlan.sale_date, FlashSalePlan.id)
    ).all()
    seen: dict[int, int] = {}
    for p in rows:
        seen.setdefault(root_of(p), p.id)
    return list(seen.values())
