"""Slack messages: the model's Markdown as mrkdwn, text split into section blocks, the approval button,
and the summaries of a stored plan and of a daily draft. Text from the data (titles, news, the model's
answer) is escaped, so that e.g. ``<!channel>`` in a title stays text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tools.formatting import format_cents, pct
from tools.plans import StoredPlan

if TYPE_CHECKING:
    from assistant.draft import DraftResult
    from tools.replan import ReplanResult

APPROVE_ACTION = "approve_plan"


SECTION_CHARS = 2900  # Slack caps a section's text at 3,000 characters


MAX_SECTIONS = 12


def escape_mrkdwn(text: str) -> str:
    """``text`` shown as it is in Slack: ``& < >`` escaped (Slack's rules), so that ``<!channel>``,
    ``<!here>`` or ``<@U123>`` in it never ping anybody and never become links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Markdown from the model as Slack mrkdwn: escape ``& < >``, ``**b**`` -> ``*b*``, links, headings."""
    text = escape_mrkdwn(text)
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
                            "text": (
                                "Only approvers can do this. Its prices reach the shop when it is published."
                            ),
                        },
                        "confirm": {"type": "plain_text", "text": "Approve"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        }
    )
    return blocks


def plan_summary(plan: StoredPlan) -> str:
    """One paragraph about a stored plan: date, status, items, expected money, approval."""
    text = (
        f"*Plan {plan.id}* for {plan.sale_date} ({plan.status}): {len(plan.items)} SKUs, "
        f"{plan.allocated_units:,} units allocated, expected revenue "
        f"{format_cents(plan.expected_revenue_cents)}, expected gross profit "
        f"{format_cents(plan.expected_profit_cents)}."
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
        f"*Flash-sale plan draft for {result.sale_date}* (plan {plan['id']}, status draft)",
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
    if plan.get("id") is not None:
        blocks += approval_blocks(int(plan["id"]))
    return text, blocks


def revision_message(result: ReplanResult) -> tuple[str, list[dict[str, Any]]]:
    """A Slack message for a re-planned revision of a live sale: what changes, and the approval button."""
    changed = [c for c in result.changes if c.action != "keep"]
    lines = [
        f"*Re-plan of live sale {result.sale_id}* at {result.at:%H:%M}: revision {result.revision} "
        f"(plan {result.revision_id}, draft) from the sales so far; {result.share_left:.0%} of the day's "
        f"demand is still to come. Expected profit of the day {format_cents(result.expected_profit_cents)}.",
    ]
    for c in changed[:10]:
        after = "ended for the rest of the day" if c.discount_after is None else f"-{c.discount_after:.0%}"
        lines.append(
            f"• {c.sku}: {c.action} (-{c.discount_before:.0%} -> {after}, {c.allocated_before:,} -> "
            f"{c.allocated_after:,} units; {c.sold_so_far:,} sold, demand x{c.demand_multiplier:.2f})"
        )
    if not changed:
        lines.append("No change: the sale is on track.")
    text = to_mrkdwn("\n".join(lines))
    return text, text_blocks(text, converted=True) + approval_blocks(result.revision_id)
