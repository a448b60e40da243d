"""The analysis tools: compare two campaigns with a significance test, break a past sale's misses down by
SKU, category or brand with their drivers, and follow the forecast error over the last sales."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.base import ToolArgs, ToolDate, llm_tool
from tools.campaigns import compare_campaigns as make_comparison
from tools.campaigns import compare_days
from tools.kpi import KpiInputError
from tools.sale_analysis import forecast_error_series, sale_breakdown, side_figures

PlanIds = list[int]
PLAN_ID = Field(..., ge=1, le=2**31 - 1, description="Id of a plan whose sale day is over.")


class CompareArgs(ToolArgs):
    plans_a: PlanIds | None = Field(None, min_length=1, max_length=60, description="Plan ids of side A.")
    plans_b: PlanIds | None = Field(None, min_length=1, max_length=60, description="Plan ids of side B.")
    start_a: ToolDate | None = Field(None, description="First day of side A's date range (instead of plans).")
    end_a: ToolDate | None = Field(None, description="Last day of side A's date range, inclusive.")
    start_b: ToolDate | None = Field(None, description="First day of side B's date range.")
    end_b: ToolDate | None = Field(None, description="Last day of side B's date range, inclusive.")
    metric: Literal["gross_profit", "gmv", "units"] = Field("gross_profit", description="What to compare.")
    unit: Literal["auto", "day", "customer"] = Field(
        "auto",
        description="Observation unit: 'day', or 'customer' (one plan a side on the same date: the two "
        "arms of an A/B split). 'auto': day when each side has 2+ days, else customer.",
    )

    @model_validator(mode="after")
    def _one_kind_of_side(self) -> CompareArgs:
        by_plans = self.plans_a is not None and self.plans_b is not None
        by_dates = None not in (self.start_a, self.end_a, self.start_b, self.end_b)
        if by_plans == by_dates:
            raise ValueError(
                "give either plans_a and plans_b (plan ids) or start_a, end_a, start_b and end_b "
                "(date ranges)"
            )
        for start, end in ((self.start_a, self.end_a), (self.start_b, self.end_b)):
            if start is not None and end is not None and end < start:
                raise ValueError(f"a date range ends ({end}) before it starts ({start})")
        return self


@llm_tool(CompareArgs)
def compare_campaigns(deps: Deps, session: Session, args: CompareArgs) -> dict[str, Any]:
    """Compare two campaigns (lists of plans, two date ranges, or the two arms of an A/B split on one
    date): the difference of gross profit, GMV or units with a confidence interval, Welch's test and a
    verdict; for plan sides also each side's profit and GMV per slot and profit per unit sold."""
    if args.plans_a is not None and args.plans_b is not None:
        result = make_comparison(session, args.plans_a, args.plans_b, metric=args.metric, unit=args.unit)
        data: dict[str, Any] = result.model_dump(mode="json")
        data["side_a"] = side_figures(session, args.plans_a).model_dump(mode="json")
        data["side_b"] = side_figures(session, args.plans_b).model_dump(mode="json")
    else:
        assert args.start_a and args.end_a and args.start_b and args.end_b  # the validator's promise
        if args.unit == "customer":
            raise KpiInputError("date ranges compare per day: leave unit out or set it to 'day'")
        days_a = _days(args.start_a, args.end_a)
        days_b = _days(args.start_b, args.end_b)
        result = compare_days(
            session,
            days_a,
            days_b,
            metric=args.metric,
            label_a=f"{args.start_a} to {args.end_a}",
            label_b=f"{args.start_b} to {args.end_b}",
        )
        data = result.model_dump(mode="json")
    if args.metric != "units":  # money per observation unit: in major units with the currency
        for key in MONEY_FIELDS:
            data[f"{key}_cents"] = data.pop(key)
    data["note_on_units"] = (
        f"mean_a, mean_b, difference and ci_low/ci_high are {args.metric} per {data['unit']}; relative_* "
        "are fractions (0.1 = +10 %)"
    )
    return data


MONEY_FIELDS = ("mean_a", "mean_b", "difference", "ci_low", "ci_high")


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if (end - start).days > 366:
        raise KpiInputError(f"a date range of {(end - start).days + 1} days: give at most a year a side")
    return [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]


class BreakdownArgs(ToolArgs):
    plan_id: int = PLAN_ID
    by: Literal["sku", "category", "brand"] = Field("category", description="Group the items by this.")
    top: int = Field(10, ge=1, le=50, description="Most groups to return (worst sell-through first).")


@llm_tool(BreakdownArgs)
def sale_vs_plan(deps: Deps, session: Session, args: BreakdownArgs) -> dict[str, Any]:
    """Why a past sale under- or over-performed: per SKU, category or brand its forecast against what
    sold, the error (WAPE), sell-through, profit against expected and the miss drivers of its items
    (stock-out, price, market signals, noise), worst sell-through first."""
    breakdown = sale_breakdown(session, args.plan_id, args.by, today=deps.today())
    data = breakdown.model_dump(mode="json")
    data["groups"] = data["groups"][: args.top]
    data["note_on_units"] = "wape, bias and sell_through are fractions (0.25 = 25 %); units are units"
    return data


class ErrorSeriesArgs(ToolArgs):
    last: int = Field(5, ge=2, le=30, description="How many of the last closed sales.")


@llm_tool(ErrorSeriesArgs)
def forecast_error_trend(deps: Deps, session: Session, args: ErrorSeriesArgs) -> dict[str, Any]:
    """The forecast error (WAPE, bias) of the last N closed sales, oldest first, and whether it is getting
    better: the slope of the error per sale with its p-value and a verdict."""
    series = forecast_error_series(session, today=deps.today(), last=args.last)
    data = series.model_dump(mode="json")
    data["note_on_units"] = "wape and bias are fractions (0.25 = 25 %); bias > 0 means over-forecast"
    return data
