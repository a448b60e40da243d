"""Slack messages: the model's Markdown as mrkdwn, text split into section blocks, the approval button,
and the summaries of a stored plan and of a daily draft. Text from the data (titles, news, the model's
answer) is escaped, so that e.g. ``<!channel>`` in a title stays text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import FlashSalePlan, PlanItem
from tools.formatting import format_cents, pct

if TYPE_CHECKING:
    from assistant.draft import DraftResult

APPROVE_ACTION = "approve_plan"


SECTION_CHARS = 2900  # Slack caps a section's text at 3,000 characters


MAX_SECTIONS = 12


def to_mrkdwn(text: str) -> str:
    """Markdown from the model as Slack mrkdwn: escape ``& < >``, ``**b**`` -> ``*b*``, links, headings."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    text = re.sub(r"^#{1,6}\s+(.+)$", r"*\1*", text, flags=re.MULTILINE)
    return text


def _chunks(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters, cut at line ends where possible."""
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > size // 2 else size
        yield text[:cut]
        text = text[cut:].lstrip("\n")
    if text:
        yield text


def text_blocks(text: str, *, converted: bool = False) -> list[dict[str, Any]]:
    """Section blocks of ``text`` (Markdown -> mrkdwn unless ``converted``), split to Slack's limits."""
    sections = list(_chunks(text if converted else to_mrkdwn(text), SECTION_CHARS))[:MAX_SECTIONS]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]


def approval_blocks(plan_id: int, summary: str | None = None) -> list[dict[str, Any]]:
    """An "Approve plan N" button (with a confirmation dialog) and an optional summary above it."""
    blocks: list[dict[str, Any]] = []
    if summary:
        blocks += text_blocks(summary)
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approve_{plan_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": f"Approve plan {plan_id}"},
                    "style": "primary",
                    "value": str(plan_id),
                    "confirm": {
                        "title": {"type": "plain_text", "text": f"Approve plan {plan_id}?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": "Its prices go live on the sale date. Only approvers can do this.",
                        },
                        "confirm": {"type": "plain_text", "text": "Approve"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        }
    )
    return blocks


def plan_summary(session: Session, plan_id: int) -> str | None:
    """One paragraph about a stored plan (date, status, items, expected money), or None if unknown."""
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        return None
    n, revenue, profit, units = session.execute(
        select(
            func.count(PlanItem.id),
            func.coalesce(func.sum(PlanItem.expected_revenue_cents), 0),
            func.coalesce(func.sum(PlanItem.expected_profit_cents), 0),
            func.coalesce(func.sum(PlanItem.allocated_units), 0),
        ).where(PlanItem.plan_id == plan_id)
    ).one()
    status = getattr(plan.status, "value", plan.status)
    text = (
        f"*Plan {plan_id}* for {plan.sale_date} ({status}): {n} SKUs, {int(units):,} units allocated, "
        f"expected revenue {format_cents(int(revenue))}, expected gross profit {format_cents(int(profit))}."
    )
    if plan.approved_by:
        text += f" Approved by {plan.approved_by}."
    return text


def draft_message(result: DraftResult) -> tuple[str, list[dict[str, Any]]]:
    """A Slack message for a daily draft: summary, top items, narrative label, and the approval button."""
    data = result.data
    plan = data["plan"]
    items = sorted(plan["items"], key=lambda i: -i["expected_profit_cents"])
    lines = [
        f"*Flash-sale plan draft for {result.sale_date}* (plan {plan['plan_id']}, status draft)",
        f"{len(items)} SKUs, {plan['allocated_units']:,} units allocated; expected revenue "
        f"{format_cents(plan['expected_revenue_cents'])}, "
        f"gross profit {format_cents(plan['expected_profit_cents'])}.",
    ]
    lines += [
        f"• {i['sku']} {i['title']}: -{i['discount'] * 100:.0f} % at {format_cents(i['sale_price_cents'])}, "
        f"{i['allocated_units']:,} units, profit {format_cents(i['expected_profit_cents'])}"
        for i in items[:8]
    ]
    if len(items) > 8:
        lines.append(f"… and {len(items) - 8} more in {result.markdown_path.name}")
    last = data.get("last_sale")
    if last:
        lines.append(
            f"Last sale (plan {last['plan_id']}, {last['sale_date']}): "
            f"GMV {format_cents(last['gmv_cents'])}, "
            f"sell-through {pct(last['sell_through'])}, {last['stock_outs']} stock-outs."
        )
    if data.get("signals"):
        lines.append(
            "Signals: "
            + ", ".join(f"{s['id']} ({s['direction']} {s['scope_value']})" for s in data["signals"])
        )
    lines += ["", f"_{data['narrative']['label']}_", data["narrative"]["text"]]
    # Titles, signals and the narrative are data: escaped, so that e.g. "<!channel>" in a title stays text.
    text = to_mrkdwn("\n".join(lines))
    blocks = text_blocks(text, converted=True)
    if plan.get("plan_id") is not None:
        blocks += approval_blocks(int(plan["plan_id"]))
    return text, blocks
