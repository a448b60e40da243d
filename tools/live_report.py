"""A live sale in the terminal: the status table and a re-plan's changes in words."""

from __future__ import annotations

from rich.table import Table

from tools.formatting import format_cents, short_cents
from tools.live_status import LiveStatus
from tools.replan import ReplanResult
from tools.table_fit import FitColumn, fit_table


def _hour(value: float | None) -> str:
    if value is None:
        return "-"
    hours = int(value)
    return f"{hours:02d}:{round((value - hours) * 60):02d}"


def status_table(status: LiveStatus, *, width: int | None = None) -> Table:
    """Per SKU: sold so far against the forecast's path, the pace, the posterior demand, when it sells out."""
    items = status.items
    columns = [
        FitColumn("SKU", [i.sku for i in items], left=True),
        FitColumn("off", [f"{i.discount:.0%}" for i in items]),
        FitColumn("alloc", [f"{i.allocated_units:,}" for i in items]),
        FitColumn("sold", [f"{i.sold_units:,}" for i in items]),
        FitColumn("expected", [f"{i.expected_by_now:,.1f}" for i in items]),
        FitColumn("pace", ["-" if i.pace is None else f"x{i.pace:.2f}" for i in items], drop_order=3),
        FitColumn(
            "demand/day",
            [f"{i.demand_day_prior:,.1f} -> {i.demand_day_posterior:,.1f}" for i in items],
            drop_order=2,
        ),
        FitColumn(
            "sells out",
            [
                f"sold out {i.sold_out_at:%H:%M}" if i.sold_out_at else _hour(i.sells_out_at_hour)
                for i in items
            ],
        ),
        FitColumn(
            "revenue",
            [format_cents(i.revenue_cents) for i in items],
            short=[short_cents(i.revenue_cents) for i in items],
            drop_order=1,
        ),
        FitColumn("flag", [i.flag for i in items], left=True),
    ]
    title = (
        f"Sale {status.sale_id} of {status.sale_date} at {_hour(status.hour)}: revision {status.revision} "
        f"(plan {status.plan_id}, {status.status}); {status.sold_units:,} sold, "
        f"{status.expected_by_now:,.1f} expected by now"
    )
    caption = (
        "expected: units the forecast's path expected sold by now; demand/day: the forecast's demand of the "
        "day -> after the sales so far; sells out: expected time (- : not today). Intraday profile from "
        f"{status.profile_source}"
    )
    return fit_table(title, columns, width=width, caption=caption)


def replan_lines(result: ReplanResult) -> list[str]:
    """What the re-plan changes, SKU by SKU, and how to approve it."""
    lines = [
        f"Re-plan of sale {result.sale_id} at {result.at:%H:%M} ({result.share_left:.0%} of the day's demand "
        f"still to come): saved as draft revision {result.revision} (plan {result.revision_id}); expected "
        f"profit of the day {format_cents(result.expected_profit_cents)}.",
        "Envelope kept: the approved plan's SKUs and discount ladder, markdown budget "
        + (
            "none set"
            if result.envelope["markdown_budget_cents"] is None
            else f"{format_cents(result.envelope['markdown_budget_cents'])} "
            f"({format_cents(result.envelope['markdown_spent_cents'])} spent so far)"
        )
        + f", at most {result.envelope['units_approved']:,} units on sale in all.",
    ]
    for c in result.changes:
        after = "ended" if c.discount_after is None else f"{c.discount_after:.0%} off"
        lines.append(
            f"  {c.sku}: {c.action:<10} {c.discount_before:.0%} off -> {after}; allocation "
            f"{c.allocated_before:,} -> {c.allocated_after:,} ({c.sold_so_far:,} sold; demand x"
            f"{c.demand_multiplier:.2f} of the forecast)"
        )
    lines.append(
        f"Nothing changes in the shop until a person approves and publishes it: `python cli.py plan approve "
        f"{result.revision_id} --by NAME`, then `python cli.py plan publish {result.revision_id} --by NAME`."
    )
    return lines
