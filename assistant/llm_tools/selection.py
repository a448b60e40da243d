"""Which tools a turn is sent when the full set would take too much of a small model's context.

The 14 compact schemas of 2026-12-06 were about 3,300 tokens (SmolLM2's tokenizer): 10 % of a 32k context,
40 % of an 8k one, before the system prompt and the conversation (there are more tools now). While they take
at most :data:`MAX_SCHEMA_SHARE` of the context every turn gets every tool. Above it a turn gets the tools its
question is about, by the topic words below (stock -> ``get_inventory``, competitor ->
``get_competitor_prices``, plan -> the plan tools ...), the tools the conversation already used (a follow-up
such as "and the kettle?" needs them again) and three that answer almost anything (``search_products``,
``get_product_details``, ``run_sql``); a question that names no topic gets the everyday ones. The choice and
its reason go to the audit log with the turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from langchain_core.tools import BaseTool

MAX_SCHEMA_SHARE = 0.25
CORE = ("search_products", "get_product_details", "run_sql")
EVERYDAY = ("get_sales_history", "get_inventory", "kpi_report", "optimize_plan")
_PLAN = ("optimize_plan", "save_draft_plan", "explain_plan")  # what_if and pareto have their own words

TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"sold|sell|sales|units|revenue|trend|week|month|days?\b", ("get_sales_history",)),
    (r"stock|inventory|on hand|reserved|available|allocat", ("get_inventory",)),
    (r"competitor|rival|cheaper|price gap|undercut|dump", ("get_competitor_prices",)),
    (r"news|signal|market|event|heatwave|trend", ("get_market_signals",)),
    (r"kpi|gmv|margin|profit|sell-through|buyers|orders|perform|last sale|result", ("kpi_report",)),
    (r"forecast|expect|demand|elastic|predict", ("forecast_demand",)),
    (r"plan|sale tomorrow|tomorrow|discount|slot|budget|put on sale|promot", _PLAN),
    (
        r"what if|instead|alternative|without|exclude|pin|what happens|what changes|dump|falls? by|% off:",
        ("what_if",),
    ),
    (r"compare|versus|\bvs\b|a/b|significan|earned more|the week before|than the", ("compare_campaigns",)),
    (
        r"sold through|sell-through|worst|under-?perform|over-?perform|miss|against (the )?(plan|forecast)",
        ("sale_vs_plan",),
    ),
    (r"forecast error|getting better|accura|wape|error of the last", ("forecast_error_trend",)),
    (r"review|rating|stars|customers say|complain", ("get_reviews",)),
    (
        r"live|today's sale|going|on track|pace|sold out|rest of the day|re-?plan",
        ("live_sale_status", "propose_replan"),
    ),
    (r"pareto|trade-?off|frontier|balance", ("pareto_frontier",)),
    (r"why|explain|reason|left out|chosen", ("explain_plan",)),
    (r"save|draft", ("save_draft_plan",)),
    (r"data|import|missing|capabilit|check", ("data_check",)),
)


@dataclass(frozen=True)
class ToolChoice:
    names: tuple[str, ...]
    reason: str


def choose_tools(
    question: str,
    tools: Sequence[BaseTool],
    *,
    schema_tokens: int,
    context_tokens: int,
    used: Iterable[str] = (),
) -> ToolChoice:
    """The tools for a turn on ``question`` (see the module docstring)."""
    available = [t.name for t in tools]
    if schema_tokens <= MAX_SCHEMA_SHARE * context_tokens:
        return ToolChoice(tuple(available), "all tools: their schemas fit the context")
    text = question.lower()
    wanted: list[str] = list(CORE)
    topics = [names for pattern, names in TOPICS if re.search(pattern, text)]
    for names in topics:
        wanted += names
    if not topics:
        wanted += EVERYDAY
    wanted += list(used)
    chosen = tuple(n for n in available if n in set(wanted))
    why = "the question's topics" if topics else "no topic named: the everyday tools"
    return ToolChoice(
        chosen,
        f"{len(chosen)} of {len(available)} tools ({why}, the tools used so far and the general ones): "
        f"all {schema_tokens} schema tokens would take more than {MAX_SCHEMA_SHARE:.0%} of the "
        f"{context_tokens}-token context",
    )
