"""The narrative of the daily plan draft: written by the LLM when one is reachable, from a template otherwise.

The facts are a typed :class:`NarrativeFacts` built from the stored plan, the last sale's KPIs and the market
signals. The model gets them as JSON (money in major units with the currency, as tool results show it) with a
versioned prompt (``prompts/draft_narrative_v2.md``); its text
is accepted only when every number in it traces back to the facts (:func:`assistant.grounding.
check_grounding`), otherwise the template is used and the label says why. The label always says who wrote
the narrative, so a reader never mistakes a template for analysis or the other way round.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from assistant.grounding import check_grounding
from assistant.message_model import stopped_at_token_limit
from assistant.model_json import model_view
from assistant.prompts import load_prompt
from tools.formatting import format_cents, pct
from tools.plans import StoredPlanItem

NARRATIVE_PROMPT = "draft_narrative_v2"
TEMPLATE_AUTHOR = "template"
LABEL_TEMPLATE_NO_MODEL = "Narrative: template (no model reachable)"


class NarrativeSignal(BaseModel):
    id: int
    scope: str
    scope_value: str
    direction: str
    multiplier: float = Field(description="The bounded multiplier the forecast applied.")
    plan_skus: list[str]
    source_ids: list[str]


class NarrativeLastSale(BaseModel):
    plan_id: int
    sale_date: dt.date
    gmv_cents: int
    gross_profit_cents: int
    units: int
    sell_through: float | None
    stock_outs: int


class NarrativeFacts(BaseModel):
    """What the narrative may talk about; every number the model writes must come from here."""

    sale_date: dt.date
    plan_id: int | None
    n_items: int
    expected_revenue_cents: int
    expected_profit_cents: int
    expected_units: float
    allocated_units: int
    markdown_cost_cents: int
    solver_status: str
    gap: float
    top_items: list[StoredPlanItem]
    categories: dict[str, int]
    binding_constraints: list[str]
    last_sale: NarrativeLastSale | None
    signals: list[NarrativeSignal]
    demand_model_id: int | None
    refitted: bool


@dataclass(frozen=True)
class Narrative:
    text: str
    author: str  # the model's name, or "template"
    label: str
    prompt_version: str | None = None
    rejected_numbers: tuple[str, ...] = ()

    @property
    def by_model(self) -> bool:
        return self.author != TEMPLATE_AUTHOR


def template_narrative(facts: NarrativeFacts) -> str:
    """A deterministic narrative from the facts alone (used when no model is reachable)."""
    parts: list[str] = []
    if facts.n_items == 0:
        parts.append(f"The optimiser put no SKU on sale for {facts.sale_date}.")
    else:
        cats = ", ".join(f"{c} ({n})" for c, n in sorted(facts.categories.items(), key=lambda kv: -kv[1])[:4])
        parts.append(
            f"The draft plan{f' {facts.plan_id}' if facts.plan_id else ''} for {facts.sale_date} puts "
            f"{facts.n_items} SKUs on sale ({cats}) with {facts.allocated_units:,} units set aside. "
            f"It expects {facts.expected_units:,.0f} units sold for "
            f"{format_cents(facts.expected_revenue_cents)} of "
            f"revenue and {format_cents(facts.expected_profit_cents)} of gross profit, at a markdown cost of "
            f"{format_cents(facts.markdown_cost_cents)}."
        )
        top = facts.top_items[:3]
        parts.append(
            "The largest expected profit comes from "
            + ", ".join(
                f"{i.sku} ({i.title}) at {pct(i.discount, 0)} off, {format_cents(i.expected_profit_cents)}"
                for i in top
            )
            + "."
        )
        gap = "proven optimal" if facts.gap <= 1e-6 else f"within {facts.gap * 100:.2f} % of the LP bound"
        parts.append(f"The solver status is {facts.solver_status}, {gap}.")
    if facts.last_sale is not None:
        ls = facts.last_sale
        st = "unknown" if ls.sell_through is None else pct(ls.sell_through, 0)
        parts.append(
            f"The last closed sale (plan {ls.plan_id}, {ls.sale_date}) sold {ls.units:,} units for "
            f"{format_cents(ls.gmv_cents)} of GMV and {format_cents(ls.gross_profit_cents)} of gross profit; "
            f"sell-through was {st} with {ls.stock_outs} stock-outs."
        )
    else:
        parts.append("There is no closed sale before this date to compare with.")
    if facts.signals:
        sig = "; ".join(
            f"signal {s.id} ({s.direction} on {s.scope} {s.scope_value}, x{s.multiplier:.2f}, "
            f"sources {', '.join(s.source_ids) or 'none'})"
            for s in facts.signals[:5]
        )
        parts.append(f"Market signals changed the forecast of planned SKUs: {sig}.")
    else:
        parts.append("No market signal touched the planned SKUs.")
    if facts.binding_constraints:
        parts.append(
            "Before approving, check the binding constraints: "
            + ", ".join(facts.binding_constraints[:4])
            + "."
        )
    if facts.refitted:
        parts.append(f"The demand model was refitted on the latest orders (model {facts.demand_model_id}).")
    return " ".join(parts)


def write_narrative(
    facts: NarrativeFacts,
    model: BaseChatModel | None,
    *,
    currency: str = "EUR",
    on_exchange: Callable[[dict[str, Any]], None] | None = None,
) -> Narrative:
    """The narrative by ``model`` when given and it answers with grounded numbers, else the template.

    ``on_exchange`` receives the model exchange (inputs, output, latency, error) for the audit log.
    """
    template = template_narrative(facts)
    if model is None:
        return Narrative(text=template, author=TEMPLATE_AUTHOR, label=LABEL_TEMPLATE_NO_MODEL)
    prompt = load_prompt(NARRATIVE_PROMPT)
    facts_json = json.dumps(model_view(facts, currency), indent=1, ensure_ascii=False)
    name = str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
    messages = [SystemMessage(prompt.text), HumanMessage(f"Facts of the draft:\n```json\n{facts_json}\n```")]
    started = time.perf_counter()
    error: str | None = None
    unreachable = False
    text = ""
    cut_off = False
    try:
        reply = model.invoke(messages)
        text = (reply.content if isinstance(reply.content, str) else json.dumps(reply.content)).strip()
        cut_off = isinstance(reply, AIMessage) and stopped_at_token_limit(reply)
    except Exception as exc:  # unreachable or failing server: the template still gives a draft
        error = f"{type(exc).__name__}: {exc}"
        unreachable = _is_unreachable(exc)
    if on_exchange is not None:
        on_exchange(
            {
                "name": name,
                "inputs": {"prompt_version": prompt.version, "facts": json.loads(facts_json)},
                "outputs": {"text": text},
                "latency_ms": (time.perf_counter() - started) * 1000,
                "error": error,
            }
        )
    if error is not None or not text:
        label = (
            LABEL_TEMPLATE_NO_MODEL
            if unreachable
            else f"Narrative: template ({name} failed: {error.split(':')[0] if error else 'empty reply'})"
        )
        return Narrative(text=template, author=TEMPLATE_AUTHOR, label=label, prompt_version=prompt.version)
    unusable = _unusable(text, cut_off=cut_off)
    report = check_grounding(text, [facts_json])
    if unusable is None and report.ok:
        unusable = _about_nothing(text, facts)
    if unusable is not None:
        label = f"Narrative: template ({name}'s text {unusable})"
        return Narrative(text=template, author=TEMPLATE_AUTHOR, label=label, prompt_version=prompt.version)
    if not report.ok:
        bad = tuple(dict.fromkeys(report.ungrounded))
        return Narrative(
            text=template,
            author=TEMPLATE_AUTHOR,
            label=f"Narrative: template ({name}'s text had numbers not in the draft: {', '.join(bad[:5])})",
            prompt_version=prompt.version,
            rejected_numbers=bad,
        )
    return Narrative(
        text=text, author=name, label=f"Narrative: written by {name}", prompt_version=prompt.version
    )


def _unusable(text: str, *, cut_off: bool) -> str | None:
    """Why a narrative cannot go to the approver whatever it says (None: it may): cut off at the token
    limit, or repeating itself (filler)."""
    if cut_off:
        return "was cut off at the token limit"
    words = text.lower().split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if len(grams) >= 12 and len(set(grams)) < 0.5 * len(grams):
        return "repeats itself"
    return None


def _about_nothing(text: str, facts: NarrativeFacts) -> str | None:
    """A narrative that names none of the plan's items (by SKU or title) says nothing about this plan."""
    names = [n.lower() for i in facts.top_items for n in (i.sku, i.title) if n]
    if names and not any(n in text.lower() for n in names):
        return "names none of the plan's items"
    return None


def _is_unreachable(exc: Exception) -> bool:
    """A connection failure (no server, refused, timeout), not a server that answered with an error."""

    return isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError)
