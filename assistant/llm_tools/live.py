"""The live-sale tools: how today's sale is going, and a re-plan of the rest of the day for a person to
approve (the model can propose a revision; approving and publishing it stay a person's acts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.base import ToolArgs, llm_tool
from tools.live_status import default_moment, live_status, watched_revision
from tools.replan import replan_plan

PLAN_ID = Field(..., ge=1, le=2**31 - 1, description="Id of the sale's plan (any revision of it).")


class LiveSaleArgs(ToolArgs):
    plan_id: int = PLAN_ID
    hour: float | None = Field(
        None, ge=0, le=24, description="Hour of the sale day to look at (default: now, or as far as it ran)."
    )


def _moment(deps: Deps, session: Session, plan_id: int, hour: float | None) -> dt.datetime:
    moment = default_moment(session, plan_id, deps.now())
    if hour is None:
        return moment
    sale_day = watched_revision(session, plan_id).sale_date
    return dt.datetime.combine(sale_day, dt.time.min) + dt.timedelta(hours=hour)


@llm_tool(LiveSaleArgs)
def live_sale_status(deps: Deps, session: Session, args: LiveSaleArgs) -> dict[str, Any]:
    """How a live (or finished) flash sale is going: per SKU the units sold so far against the forecast's
    path through the day, the pace, the day's demand before and after the sales so far, the expected
    sell-out hour and a flag (on track, far ahead, far behind, sold out early)."""
    status = live_status(session, args.plan_id, _moment(deps, session, args.plan_id, args.hour))
    data = status.model_dump(mode="json", exclude={"history"})
    data["flagged"] = status.flagged()
    data["note_on_units"] = "pace is sold / expected by now (1.0 = on the forecast's path); hours are 0-24"
    return data


class ReplanArgs(ToolArgs):
    plan_id: int = PLAN_ID
    stock_now: dict[str, int] = Field(
        default_factory=dict,
        max_length=50,
        description="Units the user reports still in the warehouse per SKU (a supply problem, a recount); "
        "those SKUs get no more for the rest of the day.",
    )


@llm_tool(ReplanArgs, writes="a draft revision of a live flash_sale_plan for a person to approve")
def propose_replan(deps: Deps, session: Session, args: ReplanArgs) -> dict[str, Any]:
    """Re-optimise the rest of today's live sale from the sales so far, inside the approved envelope (the
    plan's SKUs, discount ladder, markdown budget and stock), and save it as a DRAFT revision for a person
    to approve. Only when the user asks for a re-plan. It does not change any price."""
    at = default_moment(session, args.plan_id, deps.now())
    result = replan_plan(
        session,
        args.plan_id,
        at=at,
        created_by=f"assistant:{deps.actor}"[:100],
        channel="agent",
        stock_now=args.stock_now,
    )
    data = result.model_dump(mode="json")
    data["status"] = "draft"
    data["next_step"] = (
        f"a person approves it with `python cli.py plan approve {result.revision_id} --by NAME` and "
        f"publishes it with `python cli.py plan publish {result.revision_id} --by NAME`"
    )
    return data
